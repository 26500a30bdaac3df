#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns header names and values that libnghttp2 hands out into Strings, reusing the String made last time for
/// the same bytes at the same address: an entry of the HPACK dynamic or static table is handed out from one place for
/// as long as it lives, so a repeated field costs a compare instead of a String (and, past 15 UTF-8 bytes, an
/// allocation).
///
/// The cache is direct-mapped: each address has one slot, found by mixing its bits (no hashing, no probing, no
/// growth), and a newcomer simply takes the slot. The bytes are always compared with the cached String's, so a slot
/// whose address now holds other bytes (a table entry evicted and its memory reused) gives a new String.
struct FieldStringCache {
    private static let slotCount = 128
    /// The address each slot's string was made from (0: empty). Both arrays are made on first use (a connection
    /// that never receives a field block keeps none).
    private var addresses: [UInt] = []
    private var strings: [String] = []

    mutating func string(_ bytes: UnsafePointer<UInt8>?, count: Int) -> String {
        guard let bytes, count > 0 else { return "" }
        if addresses.isEmpty {
            addresses = Array(repeating: 0, count: Self.slotCount)
            strings = Array(repeating: "", count: Self.slotCount)
        }
        let address = UInt(bitPattern: bytes)
        // Static table strings are packed a few bytes apart (":method" and "GET"): the low bits tell them apart.
        // Dynamic table strings are malloc'd, 16-byte aligned: the bits above those spread them.
        let slot = Int(truncatingIfNeeded: address ^ (address >> 4) ^ (address >> 11)) & (Self.slotCount - 1)
        if addresses[slot] == address {
            let cached = strings[slot]
            if cached.utf8.count == count,
                cached.utf8.withContiguousStorageIfAvailable({ memcmp($0.baseAddress!, bytes, count) == 0 }) == true
            {
                return cached
            }
        }
        let string = String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
        addresses[slot] = address
        strings[slot] = string
        return string
    }
}
