import Testing
import Foundation
import HTTPTypes
import NIOCore
@testable import H2Command

/// `h2 serve`'s cache of small files, and the rule that lets one `stat` answer the requests one read brought.
@Suite struct FileCacheTests {
    private func cachedFile() throws -> (FileCache, String, stat) {
        let path = NSTemporaryDirectory() + "file-cache-\(UUID().uuidString).txt"
        try Data("one\n".utf8).write(to: URL(fileURLWithPath: path))
        var status = stat()
        #expect(stat(path, &status) == 0)
        let cache = FileCache()
        cache.insert(path, status, contents: ByteBuffer(string: "one\n"), headers: [.contentLength: "4"])
        return (cache, path, status)
    }

    @Test func anEntryIsUsedOnlyWhileTheFileIsTheOneItWasReadFrom() throws {
        let (cache, path, status) = try cachedFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(cache.lookup(path, status)?.contents == ByteBuffer(string: "one\n"))
        try Data("three\n".utf8).write(to: URL(fileURLWithPath: path), options: .atomic)  // another inode and size
        var changed = stat()
        #expect(stat(path, &changed) == 0)
        #expect(cache.lookup(path, changed) == nil)
    }

    @Test func aCheckAnswersRequestsReceivedNoLaterThanItBeganAndNoneReceivedAfter() throws {
        let (cache, path, status) = try cachedFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let receivedFirst = ContinuousClock.now
        #expect(cache.checkedEntry(path: "/page.txt", receivedAt: receivedFirst) == nil, "nothing checked yet")
        let checkedAt = ContinuousClock.now
        let entry = try #require(cache.lookup(path, status))
        cache.noteChecked(path: "/page.txt", entry: entry, at: checkedAt)
        #expect(cache.checkedEntry(path: "/page.txt", receivedAt: receivedFirst) === entry, "arrived before the check")
        #expect(cache.checkedEntry(path: "/page.txt", receivedAt: checkedAt) === entry, "the same instant")
        #expect(cache.checkedEntry(path: "/page.txt", receivedAt: checkedAt + .nanoseconds(1)) == nil, "arrived after it: check again")
        #expect(cache.checkedEntry(path: "/other.txt", receivedAt: receivedFirst) == nil, "another path")
    }

    @Test func eachThreadKeepsItsOwnChecks() async throws {
        let (cache, path, status) = try cachedFile()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let entry = try #require(cache.lookup(path, status))
        let receivedAt = ContinuousClock.now
        func onANewThread(_ body: @escaping @Sendable () -> Bool) async -> Bool {
            await withCheckedContinuation { continuation in Thread.detachNewThread { continuation.resume(returning: body()) } }
        }
        let onTheCheckingThread = await onANewThread {
            cache.noteChecked(path: "/page.txt", entry: entry, at: .now)
            return cache.checkedEntry(path: "/page.txt", receivedAt: receivedAt) != nil
        }
        let onAnother = await onANewThread { cache.checkedEntry(path: "/page.txt", receivedAt: receivedAt) != nil }
        #expect(onTheCheckingThread)
        #expect(!onAnother, "another thread checks for itself")
    }
}
