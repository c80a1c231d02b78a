;; Jobicolet whose malloc takes and returns i64 instead of i32.
(module
  (memory (export "memory") 1)
  (func (export "init"))
  (func (export "malloc") (param i64) (result i64) (i64.const 0))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)))
