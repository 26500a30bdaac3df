internal import CNGHTTP2

/// Lays out header fields as the `nghttp2_nv` array libnghttp2 takes, in one allocation, for the
/// length of a closure. libnghttp2 copies (and lower-cases) the fields, so nothing outlives the call.
enum HeaderBlock {
    static func withNameValues<R>(
        _ fields: [HeaderField],
        _ body: (UnsafePointer<nghttp2_nv>?, Int) throws -> R
    ) rethrows -> R {
        try fields.withUnsafeBufferPointer { try withNameValues($0, body) }
    }

    /// The same for fields the caller laid out itself (e.g. on the stack: no array to allocate).
    static func withNameValues<R>(
        _ fields: UnsafeBufferPointer<HeaderField>,
        _ body: (UnsafePointer<nghttp2_nv>?, Int) throws -> R
    ) rethrows -> R {
        if fields.isEmpty { return try body(nil, 0) }
        var byteCount = 0
        for field in fields { byteCount += field.name.utf8.count + field.value.utf8.count }
        return try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { bytes in
            try withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: fields.count) { nva in
                var offset = 0
                func copy(_ string: String) -> (UnsafeMutablePointer<UInt8>, Int) {
                    let start = bytes.baseAddress! + offset
                    let count = string.copyUTF8(to: start)
                    offset += count
                    return (start, count)
                }
                for (index, field) in fields.enumerated() {
                    let (name, nameLength) = copy(field.name)
                    let (value, valueLength) = copy(field.value)
                    nva.baseAddress!.advanced(by: index).initialize(
                        to: nghttp2_nv(
                            name: name,
                            value: value,
                            namelen: nameLength,
                            valuelen: valueLength,
                            flags: field.flags.rawValue
                        )
                    )
                }
                return try body(UnsafePointer(nva.baseAddress), fields.count)
            }
        }
    }

    /// Copies received (or sent) `nghttp2_nv` entries into header fields.
    static func fields(_ nva: UnsafePointer<nghttp2_nv>?, count: Int) -> [HeaderField] {
        guard let nva, count > 0 else { return [] }
        var result: [HeaderField] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            let nv = nva[index]
            result.append(
                HeaderField(
                    String(bytes: nv.name, count: nv.namelen),
                    String(bytes: nv.value, count: nv.valuelen),
                    flags: HeaderField.Flags(rawValue: nv.flags & 0x1)
                )
            )
        }
        return result
    }
}

extension String {
    /// Copies the string's UTF-8 bytes to `start`, which has room for `utf8.count` of them; returns that count.
    func copyUTF8(to start: UnsafeMutablePointer<UInt8>) -> Int {
        let utf8 = self.utf8
        let copied = utf8.withContiguousStorageIfAvailable { source -> Int in
            if let base = source.baseAddress { start.update(from: base, count: source.count) }
            return source.count
        }
        if let copied { return copied }
        var count = 0
        for byte in utf8 {
            start[count] = byte
            count += 1
        }
        return count
    }

    /// Decodes UTF-8 bytes; invalid sequences become U+FFFD.
    init(bytes: UnsafePointer<UInt8>?, count: Int) {
        guard let bytes, count > 0 else {
            self = ""
            return
        }
        self = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }
}
