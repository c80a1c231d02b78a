;; Jobicolet lacking the malloc export.
(module
  (memory (export "memory") 1)
  (func (export "init"))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)))
