//! zig-echo: a Jobico jobicolet in Zig, guest ABI "ver 1" (`free(ptr, size)`, as Rust modules).
//!
//! For every event it logs the event's size (level 1, info) and answers the event's bytes back
//! with code 0. An event whose top-level object has "fail": true is answered with code 500
//! and an error log (level 3), so the package's `error` result event can be seen; an event that
//! is not JSON (only `jobico run-local` can send one: the listener refuses them) gets code 400.
//!
//! The main function is exported as `echo`, not `event`: package.yaml names it with
//! `mainfuncname: echo`, as Jobico packages may.
//!
//! The host calls, per event (see docs/guest-guide.md and docs/contract.md#guest-abi):
//!   p = malloc(len); copy the event (compact JSON) to p
//!   r = malloc(16)
//!   echo(r, p, len)        -> writes {code u64, (result_ptr << 32) | result_len u64} at r
//!   free(result_ptr, result_len) if result_ptr != 0, then free(r, 16), free(p, len)
//! Zig's allocators need a block's length to free it, which is exactly what ver 1 passes.
//!
//! Build: see build.sh (`python -m ziglang build-exe`, from PyPI `ziglang`).
const std = @import("std");

// Small and made for wasm: grows linear memory with memory.grow and reuses freed blocks.
const allocator = std.heap.wasm_allocator;

const LOG_INFO: i32 = 1;
const LOG_ERROR: i32 = 3;

/// The one host function: log(level, ptr, len); the bytes are UTF-8.
extern "env" fn log(level: i32, ptr: [*]const u8, len: usize) void;

fn logStr(level: i32, text: []const u8) void {
    log(level, text.ptr, text.len);
}

/// 1: free takes the block's size too.
export fn ver() i32 {
    return 1;
}

/// Called once per instance, before the first event. Nothing to set up here.
export fn init() void {}

// A zero-length block is never handed out: the host may pass 0 as a size, and Zig's allocators
// return no real address for empty slices. Both directions round 0 up to 1 alike.
export fn malloc(size: usize) ?[*]u8 {
    const block = allocator.alloc(u8, @max(size, 1)) catch return null;
    return block.ptr;
}

export fn free(ptr: [*]u8, size: usize) void {
    allocator.free(ptr[0..@max(size, 1)]);
}

/// What the main function returns: 16 bytes, which wasm32's C ABI hands back through a hidden
/// first pointer argument (the `r` above).
const Answer = extern struct { code: u64, result: u64 };

/// A result the host can free: a copy of `bytes` in a block of exactly their length.
fn answer(code: u64, bytes: []const u8) Answer {
    const out = malloc(bytes.len) orelse return .{ .code = code, .result = 0 };
    @memcpy(out[0..bytes.len], bytes);
    const addr: u64 = @intFromPtr(out);
    return .{ .code = code, .result = (addr << 32) | bytes.len };
}

const Ask = enum { echo, fail, not_json };

/// Parses the event with std.json: "fail" counts only at the top level, so the original event
/// nested inside a chained result event does not fail again. Everything parsed lives in an
/// arena that is gone when this returns, so nothing is kept between events.
fn ask(event: []const u8) Ask {
    var arena = std.heap.ArenaAllocator.init(allocator);
    defer arena.deinit();
    const value = std.json.parseFromSliceLeaky(std.json.Value, arena.allocator(), event, .{}) catch
        return .not_json;
    if (value != .object) return .echo;
    const fail = value.object.get("fail") orelse return .echo;
    return if (fail == .bool and fail.bool) .fail else .echo;
}

export fn echo(ptr: [*]const u8, len: usize) Answer {
    const event = ptr[0..len];
    var buf: [64]u8 = undefined;
    logStr(LOG_INFO, std.fmt.bufPrint(&buf, "zig-echo: {d} bytes", .{len}) catch "zig-echo");
    switch (ask(event)) {
        .echo => return answer(0, event),
        .fail => {
            logStr(LOG_ERROR, "zig-echo: the event asks to fail (\"fail\": true); answering 500");
            return answer(500, "asked to fail");
        },
        .not_json => {
            logStr(LOG_ERROR, "zig-echo: the event is not JSON; answering 400");
            return answer(400, "event is not JSON");
        },
    }
}
