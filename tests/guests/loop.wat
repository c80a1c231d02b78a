;; Jobicolet whose event never returns.
(module
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
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (loop $forever (br $forever))))
