;; Jobicolet logging "level N" at each level 0..6 in order, then answering code 0, empty result.
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (func (export "init"))
  ;; bump allocator that never reuses: enough for the few events a test sends
  (func (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  (func (export "free") (param i32))
  (data (i32.const 16) "level 0level 1level 2level 3level 4level 5level 6")
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $i i32)
    (loop $next
      (call $log (local.get $i) (i32.add (i32.const 16) (i32.mul (local.get $i) (i32.const 7)))
                 (i32.const 7))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 7))))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r) (i64.const 0))))
