;; The echo jobicolet: logs the event (level 6, "no level") and answers it back with code 0.
;; The answer is a block of its own (from malloc): the host frees the result, the result
;; struct and the event after each call.
;; Implements Jobico's guest ABI (docs/guest-guide.md) by hand, so it needs no toolchain:
;; build with `python -c "import wasmtime,sys; sys.stdout.buffer.write(wasmtime.wat2wasm(open('greet.wat').read()))" > greet.wasm`
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 1024))

  ;; A bump allocator: the host frees an event's blocks together after the call, so the heap
  ;; simply starts over on free; memory grows only to the largest event seen.
  (func $malloc (export "malloc") (param $size i32) (result i32)
    (local $p i32)
    (local $end i32)
    (local.set $p (global.get $heap))
    (local.set $end (i32.and (i32.add (i32.add (local.get $p) (local.get $size)) (i32.const 7))
                             (i32.const -8)))
    ;; Grow by whole pages until the block fits; a refused grow answers 0 (out of memory).
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.div_u (i32.add (local.get $end) (i32.const 65535))
                                                      (i32.const 65536))
                                          (memory.size)))
                    (i32.const -1))
          (then (return (i32.const 0))))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func (export "free") (param $p i32)
    (global.set $heap (i32.const 1024)))

  (func (export "init"))

  ;; event(ret, ptr, len): ret <- {code: u64, (result_ptr << 32) | result_len: u64}
  (func (export "event") (param $ret i32) (param $ptr i32) (param $len i32)
    (local $out i32)
    (call $log (i32.const 6) (local.get $ptr) (local.get $len))
    (local.set $out (call $malloc (local.get $len)))
    (memory.copy (local.get $out) (local.get $ptr) (local.get $len))
    (i64.store (local.get $ret) (i64.const 0))
    (i64.store offset=8 (local.get $ret)
      (i64.or (i64.shl (i64.extend_i32_u (local.get $out)) (i64.const 32))
              (i64.extend_i32_u (local.get $len))))))
