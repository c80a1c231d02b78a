;; Jobicolet whose init() traps: no instance of it ever becomes ready.
(module
  (memory (export "memory") 1)
  (func (export "init") unreachable)
  (func (export "malloc") (param i32) (result i32) (i32.const 4096))
  (func (export "free") (param i32))
  (func (export "event") (param i32 i32 i32)))
