import Testing
import Foundation
import NIOCore
import HTTPTypes
import CompressNIO
import NIOConcurrencyHelpers
@testable import NGHTTP2Async

/// A transport for a reader fed by hand: it records cancels and takes credit as the connection would.
private final class RecordingTransport: StreamTransport, Sendable {
    private let counts = NIOLockedValueBox((credited: 0, cancelled: false))
    var credited: Int { counts.withLockedValue { $0.credited } }
    var cancelled: Bool { counts.withLockedValue { $0.cancelled } }

    func credit(_ reader: StreamReader.Storage) {
        let taken = reader.takeCredit()
        counts.withLockedValue { $0.credited += taken }
    }
    func cancelStream(_ streamID: Int32) { counts.withLockedValue { $0.cancelled = true } }
    func readerDropped(streamID: Int32, unread: Int, cancel: Bool) {}
    func enqueue(_ chunk: ByteBuffer, streamID: Int32) {}
    func finishBody(streamID: Int32, trailers: HTTPFields?) {}
    func abortBody(streamID: Int32, error: any Error) {}
}

/// Compresses `bytes` with compress-nio, as a server would.
private func compress(_ bytes: [UInt8], _ algorithm: CompressionAlgorithm) throws -> [UInt8] {
    var plain = ByteBuffer(bytes: bytes)
    var compressed = try plain.compress(with: algorithm)
    return compressed.readBytes(length: compressed.readableBytes)!
}

/// Compressible, not trivially: words drawn pseudo-randomly from a small vocabulary.
private func text(_ count: Int, seed: UInt64 = 7) -> [UInt8] {
    let words = ["stream", "window", "frame", "header", "settings", "priority", "goaway", "ping", "data", "push",
                 "continuation", "hpack", "huffman", "reset", "flow", "credit", "zlib", "gzip", "deflate", "body"]
    var state = seed
    var result: [UInt8] = []
    result.reserveCapacity(count + 16)
    while result.count < count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        result += Array(words[Int(state >> 33) % words.count].utf8)
        result.append(state & 0x1_0000_0000 == 0 ? 0x20 : 0x0a)
        if state & 0xf0 == 0 { result += Array("\(state >> 40)".utf8) }
    }
    return Array(result.prefix(count))
}

/// A reader that decodes `compressed` (fed in `chunk`-byte DATA pieces), ended unless `end` is false.
private func decodingReader(
    _ compressed: [UInt8], _ coding: ContentDecoder.Coding, ratio: Int = ContentDecoding.defaultMaxExpansionRatio,
    chunk: Int = 1000, end: Bool = true
) -> (StreamReader, RecordingTransport) {
    let transport = RecordingTransport()
    let storage = StreamReader.Storage(streamID: 1, connection: transport)
    var offset = 0
    while offset < compressed.count {
        let piece = compressed[offset..<min(offset + chunk, compressed.count)]
        piece.withUnsafeBytes { _ = storage.receive($0) }
        offset += piece.count
    }
    if end { storage.finish(trailers: [HTTPField.Name("x-done")!: "1"]) }
    let reader = StreamReader(storage: storage)
    reader.decode(with: ContentDecoder(coding: coding, maxExpansionRatio: ratio))
    return (reader, transport)
}

/// The code of the ``HTTP2Error`` that `body` throws, if it throws one.
private func thrownCode(_ body: () async throws -> Void) async -> HTTP2Error.Code? {
    do {
        try await body()
        return nil
    } catch let error as HTTP2Error {
        return error.code
    } catch {
        return nil
    }
}

private func readAll(_ reader: StreamReader, upTo maxBytes: Int = .max) async throws -> [UInt8] {
    var result: [UInt8] = []
    while var chunk = try await reader.read(upTo: maxBytes) {
        #expect(chunk.readableBytes <= maxBytes && chunk.readableBytes > 0)
        result += chunk.readBytes(length: chunk.readableBytes)!
    }
    return result
}

@Suite struct ContentDecodingTests {
    // MARK: The decoder, on a reader fed by hand

    @Test func aGzipBodyDecodesToTheOriginalBytes() async throws {
        let plain = text(200_000)
        let (reader, transport) = decodingReader(try compress(plain, .gzip()), .gzip)
        #expect(try await readAll(reader) == plain)
        #expect(reader.isFinished)
        #expect(reader.trailers?[HTTPField.Name("x-done")!] == "1")
        #expect(!transport.cancelled)
    }

    @Test func aZlibDeflateBodyDecodesToTheOriginalBytes() async throws {
        let plain = text(100_000)
        let compressed = try compress(plain, .zlib())
        #expect(compressed[0] == 0x78)  // a zlib header, as RFC 9110 means by deflate
        let (reader, _) = decodingReader(compressed, .deflate)
        #expect(try await readAll(reader) == plain)
        #expect(reader.isFinished)
    }

    @Test func aRawDeflateBodyIsDecodedToo() async throws {
        let plain = text(100_000)
        let (reader, _) = decodingReader(try compress(plain, .deflate()), .deflate)
        #expect(try await readAll(reader) == plain)
    }

    @Test func aGzipBodyLabelledDeflateIsRecognisedByItsMagic() async throws {
        let plain = text(20_000)
        let (reader, _) = decodingReader(try compress(plain, .gzip()), .deflate)
        #expect(try await readAll(reader) == plain)
    }

    @Test func aDeflateBodyWhoseFirstChunkIsOneByteStillFindsItsFormat() async throws {
        let plain = text(10_000)
        for algorithm in [CompressionAlgorithm.zlib(), .deflate()] {
            let (reader, _) = decodingReader(try compress(plain, algorithm), .deflate, chunk: 1)
            #expect(try await readAll(reader, upTo: 333) == plain)
        }
    }

    @Test func outputIsSplitAcrossSmallReadsAndNothingIsLost() async throws {
        let plain = text(300_000)
        let compressed = try compress(plain, .gzip())
        for size in [1, 7, 100, 4096, 65_537] {
            let (reader, _) = decodingReader(compressed, .gzip, chunk: 4096)
            let count = size == 1 ? 20_000 : plain.count
            var result: [UInt8] = []
            while result.count < count, var chunk = try await reader.read(upTo: size) {
                #expect(chunk.readableBytes <= size)
                result += chunk.readBytes(length: chunk.readableBytes)!
            }
            #expect(result == Array(plain.prefix(result.count)) && result.count >= count, "read(upTo: \(size))")
        }
    }

    @Test func collectAndTheIteratorReadDecodedBytes() async throws {
        let plain = text(50_000)
        let compressed = try compress(plain, .gzip())
        let (first, _) = decodingReader(compressed, .gzip)
        var collected = try await first.collect(upTo: 1 << 20)
        #expect(collected.readBytes(length: collected.readableBytes) == plain)
        let (second, _) = decodingReader(compressed, .gzip)
        var iterated: [UInt8] = []
        for try await var chunk in second { iterated += chunk.readBytes(length: chunk.readableBytes)! }
        #expect(iterated == plain)
        // The limit counts decoded bytes.
        let (third, _) = decodingReader(compressed, .gzip)
        #expect(await thrownCode { _ = try await third.collect(upTo: 10_000) } == .bodyTooLarge)
    }

    @Test func severalGzipMembersDecodeAsOneBody() async throws {
        let a = text(5000, seed: 1), b = text(7000, seed: 2)
        let (reader, _) = decodingReader(try compress(a, .gzip()) + compress(b, .gzip()), .gzip, chunk: 333)
        #expect(try await readAll(reader) == a + b)
    }

    @Test func anEmptyBodyDecodesToAnEmptyBody() async throws {
        let (reader, _) = decodingReader([], .gzip)
        #expect(try await reader.read() == nil)
        #expect(reader.isFinished)
    }

    @Test func aTruncatedGzipBodyFailsWithDecompressionFailed() async throws {
        let plain = text(100_000)
        let compressed = try compress(plain, .gzip())
        // Cut inside the deflate data, and cut only the 8-byte trailer (CRC and length): both are truncations.
        for cut in [compressed.count / 2, compressed.count - 4] {
            let (reader, _) = decodingReader(Array(compressed.prefix(cut)), .gzip)
            #expect(await thrownCode { _ = try await readAll(reader) } == .decompressionFailed)
            #expect(!reader.isFinished)
        }
    }

    @Test func corruptDataFailsWithDecompressionFailedAndCancelsTheStream() async throws {
        var compressed = try compress(text(100_000), .gzip())
        for index in stride(from: 100, to: 400, by: 1) { compressed[index] ^= 0x5a }
        let (reader, transport) = decodingReader(compressed, .gzip)
        #expect(await thrownCode { _ = try await readAll(reader) } == .decompressionFailed)
        #expect(transport.cancelled)
        // The failure sticks.
        #expect(await thrownCode { _ = try await reader.read() } == .decompressionFailed)
        // Not gzip at all.
        let (notGzip, _) = decodingReader(Array("plain text, not gzip".utf8), .gzip)
        #expect(await thrownCode { _ = try await readAll(notGzip) } == .decompressionFailed)
    }

    @Test func aGzipBombStopsAtTheRatioLimitWithoutDecodingItWhole() async throws {
        // 64 MiB of zeros, compressed to about 64 KiB: a ratio of about 1,000.
        let compressor = CompressionAlgorithm.gzip().compressor
        try compressor.startStream()
        var compressed = ByteBuffer()
        let zeros = ByteBuffer(repeating: 0, count: 1 << 20)
        for index in 0..<64 {
            var input = zeros
            var output = ByteBufferAllocator().buffer(capacity: 8 << 10)
            try compressor.streamDeflate(from: &input, to: &output, flush: index == 63 ? .finish : .no)
            compressed.writeBuffer(&output)
        }
        try compressor.finishStream()
        #expect(compressed.readableBytes < 100_000)
        let (reader, transport) = decodingReader(compressed.readBytes(length: compressed.readableBytes)!, .gzip, chunk: 16_384)
        var decoded = 0
        #expect(await thrownCode {
            while let chunk = try await reader.read() { decoded += chunk.readableBytes }
        } == .decompressionLimit)
        #expect(transport.cancelled)
        let ratio = ContentDecoding.defaultMaxExpansionRatio
        #expect(decoded > ContentDecoder.expansionFloor - ContentDecoder.outputChunkLimit)
        #expect(decoded < 8 << 20, "stopped after \(decoded) bytes, not 64 MiB")
        let totals = reader.contentDecoder!.totals
        // The rule: decoded may reach max(floor, ratio × compressed); the step that passes it fails.
        let allowed = max(ContentDecoder.expansionFloor, ratio * totals.compressed)
        #expect(totals.decoded > allowed)
        #expect(totals.decoded <= allowed + ContentDecoder.outputChunkLimit)
        #expect(totals.compressed < 20_000, "about 1 MiB came from \(totals.compressed) compressed bytes")
        #expect(await thrownCode { _ = try await reader.read() } == .decompressionLimit)
    }

    @Test func aSmallBodyMayHaveAnyRatioBelowTheFloor() async throws {
        let zeros = [UInt8](repeating: 0, count: 512 << 10)
        let (reader, _) = decodingReader(try compress(zeros, .gzip()), .gzip, ratio: 2)
        #expect(try await readAll(reader) == zeros)
    }

    @Test func aSecondConcurrentReadIsRefusedAsBusy() async throws {
        let compressed = try compress(text(10_000), .gzip())
        let (reader, _) = decodingReader(Array(compressed.prefix(10)), .gzip, end: false)  // the header only: no output
        let first = Task { try await reader.read() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(await thrownCode { _ = try await reader.read() } == .readerBusy)
        _ = reader.storage.fail(HTTP2Error.sessionClosed)  // the fake transport does not end the stream on cancel
        #expect(await thrownCode { _ = try await first.value } == .sessionClosed)
    }

    // MARK: decodingContent on a response

    private func response(_ status: HTTPResponse.Status, _ headers: HTTPFields, body: [UInt8], end: Bool = true) -> ClientSession.Response {
        let storage = StreamReader.Storage(streamID: 1, connection: RecordingTransport())
        body.withUnsafeBytes { if !body.isEmpty { _ = storage.receive($0) } }
        if end { storage.finish(trailers: nil) }
        return ClientSession.Response(head: HTTPResponse(status: status, headerFields: headers), body: StreamReader(storage: storage), streamID: 1)
    }

    @Test func decodingContentRewritesTheHeadAndSaysWhatItRemoved() async throws {
        let plain = text(20_000)
        for (name, algorithm) in [("gzip", CompressionAlgorithm.gzip()), ("x-gzip", .gzip()), ("deflate", .zlib()), ("Deflate", .deflate())] {
            let compressed = try compress(plain, algorithm)
            let original = response(.ok, [.contentEncoding: name, .contentLength: "\(compressed.count)", .contentType: "text/plain"], body: compressed)
            let decoded = original.decodingContent(maxExpansionRatio: 100)
            #expect(decoded.decodedContentEncoding == name.lowercased())
            #expect(decoded.headers[.contentEncoding] == nil && decoded.headers[.contentLength] == nil)
            #expect(decoded.contentType == "text/plain")
            #expect(try await decoded.bytes() == plain)
        }
    }

    @Test func otherOrSeveralCodingsAreLeftAsTheyAre() async throws {
        for encoding in ["br", "identity", "gzip, gzip", "deflate, br", ""] {
            let original = response(.ok, [.contentEncoding: encoding], body: [1, 2, 3])
            let result = original.decodingContent(maxExpansionRatio: 100)
            #expect(result.decodedContentEncoding == nil && result.headers == original.headers, "\(encoding)")
            #expect(try await result.bytes() == [1, 2, 3])
        }
        // Two content-encoding fields are two codings.
        let twoFields = response(.ok, [.contentEncoding: "gzip", .contentEncoding: "gzip"], body: [1])
        #expect(twoFields.decodingContent(maxExpansionRatio: 100).decodedContentEncoding == nil)
    }

    @Test func responsesWithoutABodyDoNotFail() async throws {
        for status in [HTTPResponse.Status.noContent, .notModified, .ok] {
            let original = response(status, [.contentEncoding: "gzip", .contentLength: "1234"], body: [])
            let result = original.decodingContent(maxExpansionRatio: 100)
            #expect(result.decodedContentEncoding == nil)
            #expect(result.headers[.contentLength] == "1234")
            #expect(try await result.bytes().isEmpty)
        }
        // Still open when decodingContent looks, then ends empty: an empty decoded body.
        let storage = StreamReader.Storage(streamID: 1, connection: RecordingTransport())
        let open = ClientSession.Response(head: HTTPResponse(status: .ok, headerFields: [.contentEncoding: "gzip"]), body: StreamReader(storage: storage), streamID: 1)
        let decoded = open.decodingContent(maxExpansionRatio: 100)
        #expect(decoded.decodedContentEncoding == "gzip")
        storage.finish(trailers: nil)
        #expect(try await decoded.bytes().isEmpty)
    }

    @Test func anAcceptEncodingForWhatIsDecoded() {
        #expect(ContentDecoding.acceptEncoding == "gzip, deflate")
    }

    // MARK: End to end, through a ServerSession and a ClientSession

    /// Serves `/gzip/N`, `/zlib/N`, `/raw/N` (N bytes of text, compressed, streamed in 16 KiB writes) and `/head`.
    private func compressingServer() async throws -> ServerSession {
        try await ServerSession.bind(host: "127.0.0.1", port: 0) { request in
            let parts = request.path.split(separator: "/").map(String.init)
            guard parts.count == 2, let count = Int(parts[1]) else { return ServerSession.Response(status: .notFound) }
            let (algorithm, encoding): (CompressionAlgorithm, String) = switch parts[0] {
            case "gzip": (.gzip(), "gzip")
            case "zlib": (.zlib(), "deflate")
            default: (.deflate(), "deflate")
            }
            let compressed = try compress(text(count), algorithm)
            let headers: HTTPFields = [.contentEncoding: encoding, .contentLength: "\(compressed.count)", .contentType: "text/plain"]
            if request.method == .head { return ServerSession.Response(headers: headers) }
            return ServerSession.Response(headers: headers, body: .writer { writer in
                var offset = 0
                while offset < compressed.count {
                    let end = min(offset + 16_384, compressed.count)
                    try await writer.write(compressed[offset..<end])
                    offset = end
                }
            })
        }
    }

    @Test func gzipAndDeflateBodiesFromAServerAreDecoded() async throws {
        let server = try await compressingServer()
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        for path in ["/gzip/30000", "/zlib/30000", "/raw/30000"] {
            let response = try await client.get(path, headers: [.acceptEncoding: ContentDecoding.acceptEncoding])
                .decodingContent(maxExpansionRatio: 100)
            #expect(response.decodedContentEncoding == (path.hasPrefix("/gzip") ? "gzip" : "deflate"))
            #expect(response.contentLength == nil)
            #expect(try await response.bytes() == text(30000), "\(path)")
        }
        let head = try await client.head("/gzip/30000").decodingContent(maxExpansionRatio: 100)
        #expect(head.status == .ok)
        #expect(try await head.bytes().isEmpty)
        await client.close()
        await server.close()
    }

    @Test func aBodyLargerThanTheStreamWindowIsDecodedInSmallReadsWithFlowControlIntact() async throws {
        let server = try await compressingServer()
        var configuration = ClientSession.Configuration()
        configuration.streamWindowSize = 64 << 10
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        let size = 4 << 20
        let expected = text(size)
        let response = try await client.get("/gzip/\(size)").decodingContent(maxExpansionRatio: 100)
        #expect(response.decodedContentEncoding == "gzip")
        var received: [UInt8] = []
        received.reserveCapacity(size)
        var maxBuffered = 0
        var reads = 0
        let sizes = [1000, 4096, 333, 16_384]
        while var chunk = try await response.body.read(upTo: sizes[reads % sizes.count]) {
            reads += 1
            received += chunk.readBytes(length: chunk.readableBytes)!
            maxBuffered = max(maxBuffered, response.body.bufferedByteCount)
        }
        #expect(received.count == size)
        #expect(received == expected)
        #expect(maxBuffered <= 64 << 10, "compressed bytes buffered: \(maxBuffered)")
        #expect(response.body.isFinished)
        let totals = response.body.contentDecoder!.totals
        #expect(totals.compressed > 4 * (64 << 10), "the compressed body (\(totals.compressed) bytes) spans many windows")
        let stats = try await client.connection.statistics()
        #expect(stats.openStreams == 0)
        await client.close()
        await server.close()
    }
}
