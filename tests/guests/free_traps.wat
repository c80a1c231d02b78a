;; Jobicolet, ver 1, like a guest of Jobico's Rust SDK whose allocator (wee_alloc) traps inside
;; free once the answer is written. It answers code 0 (or code 3 when the event starts with 'e')
;; with one digit: how many events this instance has served, this one included. The event's
;; first byte 't' asks for a trap in event instead, and a one-byte event makes malloc trap: both
;; before the answer.
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (global $served (mut i32) (i32.const 0))
  (data (i32.const 200) "answered, freeing")

  (func (export "init"))
  (func (export "ver") (result i32) (i32.const 1))

  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (if (i32.eq (local.get $n) (i32.const 1)) (then unreachable))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))

  (func (export "free") (param i32) (param i32) unreachable)

  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $mode i32)
    (local.set $mode (i32.load8_u (local.get $p)))
    (if (i32.eq (local.get $mode) (i32.const 116)) (then unreachable))          ;; 't'
    (global.set $served (i32.add (global.get $served) (i32.const 1)))
    (call $log (i32.const 1) (i32.const 200) (i32.const 17))
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (global.get $served)))
    (i64.store (local.get $r)
      (select (i64.const 3) (i64.const 0) (i32.eq (local.get $mode) (i32.const 101)))) ;; 'e'
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (i64.const 100) (i64.const 32)) (i64.const 1)))))
