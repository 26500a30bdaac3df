import Testing
import Foundation
import NIOCore
import HTTPTypes
@testable import NGHTTP2Async

/// Our ClientSession against nghttpd (nghttp2's own server), cleartext HTTP/2 on 127.0.0.1.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct ClientAgainstNghttpdTests {
    /// Small files of different sizes (one empty, one above the 1 MiB stream window) come back byte for byte; a
    /// missing file is a 404.
    @Test func smallFilesAndMissingFile() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files: [(name: String, bytes: [UInt8])] = [
            ("empty", []),
            ("one.txt", Array("x".utf8)),
            ("hello.txt", Array("hello, nghttpd\n".utf8)),
            ("frame.bin", payload(16_384, seed: 2)),
            ("window.bin", payload(65_536, seed: 3)),
            ("mid.bin", payload(300_001, seed: 4)),
            ("large.bin", payload(1_500_000, seed: 5)),
        ]
        for file in files {
            try Data(file.bytes).write(to: URL(fileURLWithPath: "\(directory)/\(file.name)"))
        }
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }

        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        for file in files {
            let response = try await client.get("/\(file.name)")
            #expect(response.status == .ok, "\(file.name)")
            #expect(response.contentLength == file.bytes.count, "\(file.name)")
            let received = try await response.bytes(upTo: 4 << 20)
            #expect(received.count == file.bytes.count, "\(file.name)")
            #expect(received == file.bytes, "\(file.name): the bytes differ")
        }
        let missing = try await client.get("/no-such-file")
        #expect(missing.status == .notFound)
        _ = try await missing.bytes(upTo: 1 << 20)  // nghttpd sends a small HTML page with the 404

        // The connection is still good after the 404.
        let again = try await client.get("/hello.txt")
        #expect(again.status == .ok)
        #expect(try await again.text() == "hello, nghttpd\n")
        await client.close()
    }

    /// A 64 MiB file, streamed chunk by chunk (never collected), has the file's length and checksum.
    /// Work that prefers the client's task executor runs on the connection's event loop, and a body read there
    /// arrives whole (the chunks, the credits and the window updates never leave that thread).
    @Test func requestsOnTheConnectionsEventLoop() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bytes = payload(5 << 20, seed: 11)
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/five.bin"))
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        let eventLoop = client.channel.eventLoop
        let (received, alwaysOnLoop) = try await withTaskExecutorPreference(client.taskExecutor) {
            var received: [UInt8] = []
            var alwaysOnLoop = eventLoop.inEventLoop
            let response = try await client.get("/five.bin")
            alwaysOnLoop = alwaysOnLoop && eventLoop.inEventLoop
            for try await chunk in response.body {
                alwaysOnLoop = alwaysOnLoop && eventLoop.inEventLoop
                received.append(contentsOf: chunk.readableBytesView)
            }
            return (received, alwaysOnLoop)
        }
        #expect(alwaysOnLoop)
        #expect(received == bytes)
        await client.close()
    }

    @Test func download64MiBStreamed() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/big.bin"
        let size = 64 << 20
        let chunkSize = 1 << 20
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let file = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        for index in 0..<(size / chunkSize) {
            try file.write(contentsOf: payload(chunkSize, seed: UInt64(index) + 100))
        }
        try file.close()
        let expected = try FNV1a.ofFile(path)
        #expect(expected.count == size)

        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")
        let response = try await client.get("/big.bin")
        #expect(response.status == .ok)
        #expect(response.contentLength == size)
        var hash = FNV1a()
        var chunks = 0
        var largestChunk = 0
        for try await chunk in response.body {
            hash.update(chunk)
            chunks += 1
            largestChunk = max(largestChunk, chunk.readableBytes)
        }
        #expect(hash.count == size, "received \(hash.count) of \(size) bytes")
        #expect(hash.value == expected.value, "checksum differs")
        #expect(chunks > 1)
        #expect(response.body.isFinished)
        await client.close()
    }

    /// 100 GETs at once on one connection (nghttpd allows 100 concurrent streams): all 200, each with its file.
    @Test func hundredConcurrentGetsOnOneConnection() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var contents: [[UInt8]] = []
        for index in 0..<10 {
            let bytes = payload(1_000 + index * 7_919, seed: UInt64(index) + 10)
            contents.append(bytes)
            try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/file\(index)"))
        }
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory)
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")

        let expected = contents
        let results = try await withThrowingTaskGroup(of: (Int, HTTPResponse.Status, Int32, Bool).self) { group in
            for request in 0..<100 {
                group.addTask {
                    let index = request % 10
                    let response = try await client.get("/file\(index)")
                    let bytes = try await response.bytes(upTo: 1 << 20)
                    return (request, response.status, response.streamID, bytes == expected[index])
                }
            }
            var results: [(Int, HTTPResponse.Status, Int32, Bool)] = []
            for try await result in group { results.append(result) }
            return results
        }
        #expect(results.count == 100)
        #expect(results.allSatisfy { $0.1 == .ok }, "statuses: \(Set(results.map { $0.1.code }))")
        let wrong = results.filter { !$0.3 }.map(\.0)
        #expect(wrong.isEmpty, "requests with wrong bodies: \(wrong)")
        #expect(Set(results.map(\.2)).count == 100, "each request has its own stream")
        #expect(results.allSatisfy { $0.2 % 2 == 1 }, "client streams are odd")
        // Everything went over the one connection, which still works.
        let last = try await client.get("/file3")
        #expect(try await last.bytes() == contents[3])
        await client.close()
    }

    /// Uploads to `nghttpd --echo-upload` come back identical: 5 MiB as bytes, and 5 MiB written in pieces.
    @Test func uploadsAreEchoed() async throws {
        let directory = try Peers.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (nghttpd, port) = try await Peers.nghttpd(directory: directory, extra: ["--echo-upload"])
        defer { nghttpd.stop() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(port)")

        let data = payload(5 << 20, seed: 42)
        let echoed = try await client.post("/upload", body: .bytes(data))
        #expect(echoed.status == .ok)
        let echoedBytes = try await echoed.bytes(upTo: 8 << 20)
        #expect(echoedBytes.count == data.count)
        #expect(echoedBytes == data, "the echoed bytes differ")

        // A streaming body, in uneven pieces (some larger than the writer's high watermark).
        let streamed = payload(5 << 20, seed: 43)
        let pieces = [1, 100, 16_384, 70_000, 300_000, 1 << 20]
        let response = try await client.put(
            "/upload-streamed",
            body: .writer { writer in
                var offset = 0
                var which = 0
                while offset < streamed.count {
                    let end = min(offset + pieces[which % pieces.count], streamed.count)
                    try await writer.write(streamed[offset..<end])
                    offset = end
                    which += 1
                }
            }
        )
        #expect(response.status == .ok)
        var received: [UInt8] = []
        received.reserveCapacity(streamed.count)
        for try await chunk in response.body {
            received.append(contentsOf: chunk.readableBytesView)
        }
        #expect(received.count == streamed.count)
        #expect(received == streamed, "the echoed streaming upload differs")

        // Both at once on the same connection.
        async let first = client.post("/a", body: .bytes(data[..<(1 << 20)]))
        async let second = client.post("/b", body: .bytes(streamed[..<(2 << 20)]))
        let (a, b) = try await (first, second)
        #expect(try await a.bytes() == Array(data[..<(1 << 20)]))
        #expect(try await b.bytes() == Array(streamed[..<(2 << 20)]))
        await client.close()
    }
}

/// FNV-1a (64 bit) over a byte stream, with its length.
struct FNV1a {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    private(set) var count = 0

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        var hash = value
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        value = hash
        count += bytes.count
    }

    mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    /// The hash of a file, read in 1 MiB pieces.
    static func ofFile(_ path: String) throws -> FNV1a {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var hash = FNV1a()
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            data.withUnsafeBytes { hash.update($0) }
        }
        return hash
    }
}
