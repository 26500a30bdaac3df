internal import CNGHTTP2

extension HPACK {
    /// An HPACK encoder: compresses header lists into header blocks
    /// ([RFC 7541 §6](https://www.rfc-editor.org/rfc/rfc7541.html#section-6)), keeping the dynamic table
    /// that the peer's decoder mirrors. Wraps an `nghttp2_hd_deflater`.
    ///
    /// libnghttp2 decides how each field is represented. It uses the static and dynamic tables when a
    /// field (or its name) is in them, and Huffman-codes a string whenever that is shorter. New fields are
    /// added to the dynamic table ("literal with incremental indexing",
    /// [§6.2.1](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.1)) except for:
    /// - fields flagged ``HeaderField/Flags/noIndex``, and also `authorization` and any `cookie` whose
    ///   value is shorter than 20 bytes. These are sent as "never indexed"
    ///   ([§6.2.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.3)), so they decode with
    ///   ``HeaderField/Flags/noIndex`` set.
    /// - `:path`, `age`, `content-length`, `etag`, `if-modified-since`, `if-none-match`, `location` and
    ///   `set-cookie`, and any field larger than ¾ of the table. These are sent as "literal without
    ///   indexing" ([§6.2.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.2)).
    ///
    /// Names are encoded byte for byte as given. HTTP/2 requires lower-case names, so lower-case them first.
    ///
    /// An encoder is not thread-safe. Encode the blocks of one connection in the order they are sent. After
    /// an encode fails, the encoder is unusable: every later call throws ``NGHTTP2Error/headerCompression``.
    public final class Encoder {
        private let deflater: OpaquePointer

        /// Creates an encoder whose dynamic table never grows beyond `maxDynamicTableSize` bytes.
        ///
        /// This is the memory bound the encoder will use whatever the peer allows
        /// (`nghttp2_hd_deflate_new`). The table starts at the protocol's initial size, 4,096 bytes
        /// ([RFC 9113 §6.5.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-6.5.2)), or at
        /// `maxDynamicTableSize` when that is smaller. In that case, the first block starts with a dynamic
        /// table size update ([RFC 7541 §6.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.3)).
        ///
        /// - Parameter maxDynamicTableSize: The most bytes the dynamic table may ever hold (entry sizes
        ///   counted as in [RFC 7541 §4.1](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.1)).
        /// - Throws: ``NGHTTP2Error/invalidArgument`` if `maxDynamicTableSize` is negative;
        ///   ``NGHTTP2Error/noMemory`` if the encoder cannot be allocated.
        public init(maxDynamicTableSize: Int = 4096) throws(NGHTTP2Error) {
            let bound = try HPACK.size(maxDynamicTableSize)
            var pointer: OpaquePointer?
            try NGHTTP2Error.check(nghttp2_hd_deflate_new(&pointer, bound))
            guard let pointer else { throw .noMemory }
            deflater = pointer
        }

        deinit {
            nghttp2_hd_deflate_del(deflater)
        }

        /// Encodes a header list into one complete header block.
        ///
        /// The encoder's dynamic table changes, so the block must be sent (and decoded) before any block
        /// encoded after it.
        ///
        /// - Parameter fields: The header fields, in order. Fields flagged ``HeaderField/Flags/noIndex``
        ///   are sent as "never indexed" literals
        ///   ([RFC 7541 §6.2.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.3)).
        /// - Returns: The header block (the payload of a HEADERS frame and its CONTINUATION frames).
        /// - Throws: ``NGHTTP2Error/headerCompression`` if libnghttp2 fails to encode, or
        ///   ``NGHTTP2Error/noMemory``. Either way the encoder is unusable afterwards.
        public func encode(_ fields: [HeaderField]) throws(NGHTTP2Error) -> [UInt8] {
            var block: [UInt8] = []
            try encode(fields, into: &block)
            return block
        }

        /// Encodes a header list into one complete header block, appended to `buffer`.
        ///
        /// Same as ``encode(_:)``, but appends the block to `buffer` (for example after a frame
        /// header) instead of returning a new array. If it throws, `buffer` is left as it was.
        ///
        /// - Parameters:
        ///   - fields: The header fields, in order.
        ///   - buffer: The bytes to append the header block to.
        /// - Throws: ``NGHTTP2Error/headerCompression`` if libnghttp2 fails to encode, or
        ///   ``NGHTTP2Error/noMemory``. Either way the encoder is unusable afterwards.
        public func encode(_ fields: [HeaderField], into buffer: inout [UInt8]) throws(NGHTTP2Error) {
            let deflater = self.deflater
            let result: Result<Void, NGHTTP2Error> = HeaderBlock.withNameValues(fields) { nva, count in
                let bound = nghttp2_hd_deflate_bound(deflater, nva, count)
                let start = buffer.count
                buffer.append(contentsOf: repeatElement(0, count: bound))
                let written = buffer.withUnsafeMutableBufferPointer { bytes in
                    nghttp2_hd_deflate_hd(deflater, bytes.baseAddress.map { $0 + start }, bound, nva, count)
                }
                guard written >= 0 else {
                    buffer.removeSubrange(start...)
                    return .failure(NGHTTP2Error(code: Int32(clamping: written)))
                }
                buffer.removeLast(bound - written)
                return .success(())
            }
            try result.get()
        }

        /// Applies the peer's SETTINGS_HEADER_TABLE_SIZE: the most bytes its decoder keeps in the dynamic
        /// table.
        ///
        /// The encoder uses the smaller of `size` and the bound it was created with, evicting entries as
        /// needed. The next header block starts with a dynamic table size update
        /// ([RFC 7541 §6.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.3)). If the size has
        /// dropped and risen again since the last block, the block starts with two updates: the
        /// smallest size first, then the current size
        /// ([§4.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.2)).
        ///
        /// - Parameter size: The peer's SETTINGS_HEADER_TABLE_SIZE, in bytes.
        /// - Throws: ``NGHTTP2Error/invalidArgument`` if `size` is negative; ``NGHTTP2Error/noMemory``.
        public func setDynamicTableSize(_ size: Int) throws(NGHTTP2Error) {
            let size = try HPACK.size(size)
            try NGHTTP2Error.check(nghttp2_hd_deflate_change_table_size(deflater, size))
        }

        /// The bytes the dynamic table holds now, counting 32 bytes of overhead per entry
        /// ([RFC 7541 §4.1](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.1)).
        public var dynamicTableSize: Int {
            nghttp2_hd_deflate_get_dynamic_table_size(deflater)
        }

        /// The maximum size of the dynamic table now in effect
        /// ([RFC 7541 §4.2](https://www.rfc-editor.org/rfc/rfc7541.html#section-4.2)).
        ///
        /// This is the smaller of the bound given to ``init(maxDynamicTableSize:)`` and the peer's
        /// setting (4,096 until ``setDynamicTableSize(_:)`` is called).
        public var maxDynamicTableSize: Int {
            nghttp2_hd_deflate_get_max_dynamic_table_size(deflater)
        }

        /// The number of entries in the dynamic table.
        public var dynamicTableCount: Int {
            nghttp2_hd_deflate_get_num_table_entries(deflater) - HPACK.staticTableCount
        }

        /// Returns an entry of the dynamic table, newest first.
        ///
        /// Entry 0 is the most recently added one, HPACK index 62
        /// ([RFC 7541 §2.3.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-2.3.3)).
        ///
        /// - Parameter index: The position in the dynamic table, from 0 (newest) to
        ///   ``dynamicTableCount`` - 1 (oldest).
        /// - Returns: The entry, or `nil` if `index` is out of range.
        public func dynamicTableEntry(at index: Int) -> HeaderField? {
            guard index >= 0, index < dynamicTableCount else { return nil }
            return HPACK.field(nghttp2_hd_deflate_get_table_entry(deflater, HPACK.staticTableCount + 1 + index))
        }
    }
}

@available(*, unavailable, message: "an HPACK encoder holds mutable C state; use it from one task at a time")
extension HPACK.Encoder: Sendable {}
