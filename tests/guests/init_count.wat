;; Jobicolet answering two digits: how many times init() ran in this instance, and how many
;; events this instance has seen (this one included, mod 10). The event's first byte can ask
;; for a failure instead: 't' trap, 'l' loop forever, 'g' grow memory until refused then trap,
;; 'o' a result pointer outside memory; or 'e' for a normal answer with code 7.
;; Proves init runs once per instance and that the instance after a failure is a fresh one.
(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (global $inits (mut i32) (i32.const 0))
  (global $events (mut i32) (i32.const 0))
  (func (export "init") (global.set $inits (i32.add (global.get $inits) (i32.const 1))))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $mode i32)
    (global.set $events (i32.rem_u (i32.add (global.get $events) (i32.const 1)) (i32.const 10)))
    (local.set $mode (i32.load8_u (local.get $p)))
    (if (i32.eq (local.get $mode) (i32.const 116)) (then unreachable))           ;; 't'
    (if (i32.eq (local.get $mode) (i32.const 108)) (then (loop $l (br $l))))     ;; 'l'
    (if (i32.eq (local.get $mode) (i32.const 103))                               ;; 'g'
      (then
        (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))
    ;; 'e': answer with code 7 (an error answer, not a failure)
    (i64.store (local.get $r)
      (select (i64.const 7) (i64.const 0) (i32.eq (local.get $mode) (i32.const 101))))
    (if (i32.eq (local.get $mode) (i32.const 111))                               ;; 'o'
      (then
        (i64.store offset=8 (local.get $r) (i64.const 0x7FFFFFF000000010))
        (return)))
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (global.get $inits)))
    (i32.store8 (i32.const 101) (i32.add (i32.const 48) (global.get $events)))
    (i64.store offset=8 (local.get $r) (i64.or (i64.shl (i64.const 100) (i64.const 32)) (i64.const 2)))))
