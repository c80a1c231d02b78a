;; Jobicolet writing "hello from stdout" to WASI stdout and answering code 0, result "done":
;; stdout is never the result channel of a jobicolet.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
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
  (data (i32.const 64) "hello from stdout\n")
  (data (i32.const 96) "done")
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r) (i64.or (i64.shl (i64.const 96) (i64.const 32)) (i64.const 4)))))
