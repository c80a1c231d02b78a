;; Jobicolet, ver 1, whose malloc hands out one address (4096) for every block, as the Rust
;; SDK's can give the result slot the input buffer's address. Its free traps on a second free
;; of an address, as wee_alloc's does. It echoes the event: it copies the input out before it
;; writes the result struct, which lands on the input's first 16 bytes.
(module
  (memory (export "memory") 2)
  (global $freed (mut i32) (i32.const 0))
  (func (export "init"))
  (func (export "ver") (result i32) (i32.const 1))
  (func (export "malloc") (param $n i32) (result i32)
    (global.set $freed (i32.const 0))
    (if (i32.gt_u (local.get $n) (i32.const 30000)) (then (return (i32.const 0))))
    (i32.const 4096))
  (func (export "free") (param $p i32) (param i32)
    (if (i32.eq (global.get $freed) (local.get $p)) (then unreachable))
    (global.set $freed (local.get $p)))
  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (memory.copy (i32.const 65536) (local.get $p) (local.get $len))
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (i64.const 65536) (i64.const 32)) (i64.extend_i32_u (local.get $len))))))
