import NIOCore

/// What a taken chunk's slot holds until the queue is compacted (one shared empty buffer: no allocation).
private let released = ByteBuffer()

/// A FIFO of body chunks that allocates nothing for none or one chunk (most bodies), and only an array once more
/// wait at the same time; a ring buffer would allocate its storage up front for every stream.
struct ChunkQueue {
    /// The first chunk, if any; the rest wait in `more[moreStart...]`.
    private var head: ByteBuffer?
    private var more: [ByteBuffer] = []
    private var moreStart = 0

    var isEmpty: Bool { head == nil }

    /// The first queued chunk, if any.
    var first: ByteBuffer? { head }

    mutating func append(_ chunk: ByteBuffer) {
        if head == nil {
            head = chunk
        } else {
            more.append(chunk)
        }
    }

    /// Appends a copy of `bytes`: into the last chunk while that stays within `limit` bytes, else as a new chunk.
    /// A reader that is behind then finds fewer, larger chunks (one per read burst rather than one per DATA frame).
    mutating func append(_ bytes: UnsafeRawBufferPointer, coalescingUpTo limit: Int) {
        if !more.isEmpty {
            if more[more.count - 1].readableBytes + bytes.count <= limit {
                more[more.count - 1].writeBytes(bytes)
                return
            }
        } else if head != nil, head!.readableBytes + bytes.count <= limit {
            head!.writeBytes(bytes)
            return
        }
        append(ByteBuffer(bytes: bytes))
    }

    /// Replaces the first chunk (what is left of it after a partial read).
    mutating func replaceFirst(with chunk: ByteBuffer) {
        precondition(head != nil, "no chunk to replace")
        head = chunk
    }

    @discardableResult
    mutating func removeFirst() -> ByteBuffer {
        guard let chunk = head else { preconditionFailure("no chunk to remove") }
        if moreStart == more.count {
            head = nil
        } else {
            head = more[moreStart]
            more[moreStart] = released  // its memory goes with its reader, not when the queue drains
            moreStart += 1
            if moreStart == more.count {
                more.removeAll(keepingCapacity: true)
                moreStart = 0
            } else if moreStart >= 16, moreStart * 2 >= more.count {
                more.removeFirst(moreStart)
                moreStart = 0
            }
        }
        return chunk
    }

    mutating func removeAll() {
        head = nil
        more = []
        moreStart = 0
    }
}
