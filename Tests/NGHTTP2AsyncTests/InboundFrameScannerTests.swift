import Testing
@testable import NGHTTP2Async

/// The scanner that finds frame headers in what a peer sends, across reads of any size.
@Suite struct InboundFrameScannerTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func frame(type: UInt8, flags: UInt8 = 0, stream: UInt32, payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
            + [UInt8(stream >> 24), UInt8(stream >> 16 & 0xff), UInt8(stream >> 8 & 0xff), UInt8(stream & 0xff)] + payload
    }

    static let bytes: [UInt8] =
        preface + frame(type: 0x4, stream: 0, payload: [])
        + frame(type: 0x1, flags: 0x5, stream: 1, payload: [0x82, 0x86, 0x84])
        + frame(type: 0x2, stream: 3, payload: [0x80, 0, 0, 3, 15])  // exclusive bit set, depends on 3
        + frame(type: 0x0, flags: 0x1, stream: 5, payload: Array(repeating: 7, count: 40))
        + frame(type: 0x0, flags: 0x9, stream: 7, payload: [6] + Array("test".utf8))  // padded, Pad Length 6 > 4
        + frame(type: 0x1, flags: 0xd, stream: 9, payload: [2, 0x82, 0x86, 0x84, 0, 0])  // padded HEADERS
        + frame(type: 0x10, stream: 0, payload: [0, 0, 0, 9] + Array("u=0".utf8))  // PRIORITY_UPDATE for stream 9

    static let expected: [InboundFrameScanner.Frame] = [
        .init(length: 0, type: 0x4, flags: 0, streamID: 0),
        .init(length: 3, type: 0x1, flags: 0x5, streamID: 1),
        .init(length: 5, type: 0x2, flags: 0, streamID: 3, dependency: 3),
        .init(length: 40, type: 0x0, flags: 0x1, streamID: 5),
        .init(length: 5, type: 0x0, flags: 0x9, streamID: 7, padLength: 6),
        .init(length: 6, type: 0x1, flags: 0xd, streamID: 9, padLength: 2),
        .init(length: 7, type: 0x10, flags: 0, streamID: 0, prioritizedStreamID: 9),
    ]

    @Test(arguments: [1, 2, 7, 9, 13, 4096])
    func framesAreFoundWhateverTheReadSize(chunk: Int) {
        var scanner = InboundFrameScanner(skipsPreface: true)
        var found: [InboundFrameScanner.Frame] = []
        var starts: [Int] = []
        var offset = 0
        while offset < Self.bytes.count {
            let piece = Array(Self.bytes[offset..<min(offset + chunk, Self.bytes.count)])
            piece.withUnsafeBytes { raw in
                scanner.scan(raw) { frame, start in
                    found.append(frame)
                    starts.append(offset + start)
                    return true
                }
            }
            offset += chunk
        }
        #expect(found == Self.expected)
        #expect(found.map(\.hasBadPadding) == [false, false, false, false, true, false, false])
        if chunk == 4096 { #expect(starts == [24, 33, 45, 59, 108, 122, 137], "where each frame begins") }
    }

    @Test func scanningStopsWhenAsked() {
        var scanner = InboundFrameScanner(skipsPreface: true)
        var count = 0
        Self.bytes.withUnsafeBytes { raw in
            scanner.scan(raw) { _, _ in
                count += 1
                return count < 2
            }
        }
        #expect(count == 2)
    }
}
