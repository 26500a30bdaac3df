import FuzzSupport
import NGHTTP2

/// A server `Session` fed what a client sends: byte 0 picks the read size, the rest follows the connection
/// preface, which the harness sends first.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerSession(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let input = FuzzInput(start, count) else { return 0 }
    let harness = try! SessionHarness(
        role: .server,
        settings: [
            // What ServerSession advertises by default.
            Setting(.maxConcurrentStreams, 100),
            Setting(.initialWindowSize, 1 << 20),
            Setting(.maxHeaderListSize, 32 << 10),
            Setting(.noRFC7540Priorities, 1),
        ],
        connectionWindow: 8 << 20
    )
    harness.flush()
    input.forEachChunk(prefix: clientMagic) { harness.receive($0) }
    harness.flush()
    return 0
}
