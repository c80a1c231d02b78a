;; Jobicolet that attacks its host. The event's first byte picks the attack (for a JSON object,
;; the first letter of its first key: {"loop":1} is 'l'); anything else is echoed back with
;; code 0, so a test can show the same runtime still serves the next event.
;;   'l' endless loop                      'r' unbounded recursion (exhausts the wasm stack)
;;   'g' memory.grow until refused, trap   'h' a 2 MiB result (over the default 1 MiB)
;;   'f' log flood: 1 KiB lines forever    't' table.grow by 100 million: "granted"/"refused"
;;   'o' result pointer outside memory     'v' result length running past the end of memory
;;   's' keep the event at 512 (a secret)  'p' answer the 32 bytes at 512
;;   'w' WASI probes, answered as one character per figure ('0' + value): path_open at fd 3
;;       errno, fd_prestat_get(3) errno, environ_sizes_get errno, count, size, args_sizes_get
;;       errno, count, size, sock_accept(3) errno, sock_recv(3) errno
(module
  (import "env" "log" (func $log (param i32 i32 i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get"
    (func $environ_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept"
    (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv"
    (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (table 1 funcref)
  (global $bump (mut i32) (i32.const 4096))
  (data (i32.const 1024) "/etc/passwd")
  (data (i32.const 1040) "granted")
  (data (i32.const 1048) "refused")
  (func (export "init"))
  (func $malloc (export "malloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (local.get $p)
                               (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))
  ;; Everything of one event is freed together: the heap starts over.
  (func (export "free") (param i32) (global.set $bump (i32.const 4096)))

  (func $answer (param $r i32) (param $ptr i64) (param $len i64)
    (i64.store (local.get $r) (i64.const 0))
    (i64.store offset=8 (local.get $r)
      (i64.or (i64.shl (local.get $ptr) (i64.const 32)) (local.get $len))))

  (func $deep (param $n i32) (result i32)
    (i32.add (call $deep (i32.add (local.get $n) (i32.const 1))) (i32.const 1)))

  ;; store '0' + value at out, return out + 1
  (func $put (param $out i32) (param $value i32) (result i32)
    (i32.store8 (local.get $out) (i32.add (i32.const 48) (local.get $value)))
    (i32.add (local.get $out) (i32.const 1)))

  (func $probe (param $r i32)
    (local $out i32)
    (local.set $out (i32.const 3200))
    (local.set $out (call $put (local.get $out)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 11) (i32.const 0)
                       (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 3000))))
    (local.set $out (call $put (local.get $out)
      (call $fd_prestat_get (i32.const 3) (i32.const 3000))))
    (i64.store (i32.const 3000) (i64.const -1))
    (local.set $out (call $put (local.get $out)
      (call $environ_sizes_get (i32.const 3000) (i32.const 3004))))
    (local.set $out (call $put (local.get $out) (i32.load (i32.const 3000))))
    (local.set $out (call $put (local.get $out) (i32.load (i32.const 3004))))
    (i64.store (i32.const 3000) (i64.const -1))
    (local.set $out (call $put (local.get $out)
      (call $args_sizes_get (i32.const 3000) (i32.const 3004))))
    (local.set $out (call $put (local.get $out) (i32.load (i32.const 3000))))
    (local.set $out (call $put (local.get $out) (i32.load (i32.const 3004))))
    (local.set $out (call $put (local.get $out)
      (call $sock_accept (i32.const 3) (i32.const 0) (i32.const 3000))))
    ;; one iovec at 3008 -> 16 bytes at 3100
    (i32.store (i32.const 3008) (i32.const 3100))
    (i32.store (i32.const 3012) (i32.const 16))
    (local.set $out (call $put (local.get $out)
      (call $sock_recv (i32.const 3) (i32.const 3008) (i32.const 1) (i32.const 0)
                       (i32.const 3020) (i32.const 3024))))
    (call $answer (local.get $r) (i64.const 3200)
      (i64.extend_i32_u (i32.sub (local.get $out) (i32.const 3200)))))

  (func (export "event") (param $r i32) (param $p i32) (param $len i32)
    (local $mode i32) (local $size i32)
    (local.set $mode (i32.load8_u (local.get $p)))
    (if (i32.and (i32.eq (local.get $mode) (i32.const 123)) (i32.gt_u (local.get $len) (i32.const 2)))
      (then (local.set $mode (i32.load8_u offset=2 (local.get $p)))))                ;; {"x...
    (if (i32.eq (local.get $mode) (i32.const 108)) (then (loop $l (br $l))))         ;; 'l'
    (if (i32.eq (local.get $mode) (i32.const 114))                                   ;; 'r'
      (then (drop (call $deep (i32.const 0)))))
    (if (i32.eq (local.get $mode) (i32.const 103))                                   ;; 'g'
      (then
        (loop $more (br_if $more (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))
    (if (i32.eq (local.get $mode) (i32.const 104))                                   ;; 'h'
      (then
        (drop (memory.grow (i32.const 32)))
        (call $answer (local.get $r) (i64.const 65536) (i64.const 2097152))
        (return)))
    (if (i32.eq (local.get $mode) (i32.const 102))                                   ;; 'f'
      (then (loop $flood
        (call $log (i32.const 1) (i32.const 8192) (i32.const 1024))
        (br $flood))))
    (if (i32.eq (local.get $mode) (i32.const 116))                                   ;; 't'
      (then
        (if (i32.eq (table.grow (ref.null func) (i32.const 100000000)) (i32.const -1))
          (then (call $answer (local.get $r) (i64.const 1048) (i64.const 7)))
          (else (call $answer (local.get $r) (i64.const 1040) (i64.const 7))))
        (return)))
    (if (i32.eq (local.get $mode) (i32.const 111))                                   ;; 'o'
      (then
        (call $answer (local.get $r) (i64.const 0xFFFF0000) (i64.const 100))
        (return)))
    (if (i32.eq (local.get $mode) (i32.const 118))                                   ;; 'v'
      (then
        (local.set $size (i32.mul (memory.size) (i32.const 65536)))
        (call $answer (local.get $r) (i64.const 4096) (i64.extend_i32_u (local.get $size)))
        (return)))
    (if (i32.eq (local.get $mode) (i32.const 115))                                   ;; 's'
      (then
        (memory.copy (i32.const 512) (local.get $p)
          (select (local.get $len) (i32.const 32) (i32.lt_u (local.get $len) (i32.const 32))))))
    (if (i32.eq (local.get $mode) (i32.const 112))                                   ;; 'p'
      (then
        (call $answer (local.get $r) (i64.const 512) (i64.const 32))
        (return)))
    (if (i32.eq (local.get $mode) (i32.const 119))                                   ;; 'w'
      (then (call $probe (local.get $r)) (return)))
    (call $answer (local.get $r)
      (i64.extend_i32_u (local.get $p)) (i64.extend_i32_u (local.get $len)))))
