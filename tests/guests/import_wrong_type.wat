;; Complete jobicolet importing WASI's fd_write with the wrong type.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "init"))
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)))
