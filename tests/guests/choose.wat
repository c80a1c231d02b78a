;; Jobicolet whose event's first key picks what it does: {"trap": ..} traps, {"loop": ..} never
;; returns, anything else is echoed back with code 0. For end-to-end tests of failures followed
;; by a normal event on the same runtime (the byte at offset 2 is the first key's first letter).
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 1024))
  (func (export "init"))
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  ;; Everything of one event is freed together: the heap starts over.
  (func (export "free") (param i32) (global.set $bump (i32.const 1024)))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $key i32)
    (local.set $key (i32.load8_u offset=2 (local.get $p)))
    (if (i32.eq (local.get $key) (i32.const 116)) (then unreachable))        ;; 't'
    (if (i32.eq (local.get $key) (i32.const 108)) (then (loop $l (br $l))))  ;; 'l'
    (call $log (i32.const 1) (local.get $p) (local.get $len))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
              (i64.extend_i32_u (local.get $len))))))
