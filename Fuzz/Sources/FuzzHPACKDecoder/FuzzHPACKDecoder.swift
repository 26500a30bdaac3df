import FuzzSupport
import NGHTTP2

/// `HPACK.Decoder` on a run of header blocks.
///
/// Byte 0: bits 0-2 pick a SETTINGS_HEADER_TABLE_SIZE (``tableSizes``), applied before the block that bits 3-4 name
/// (0-3); bit 5 raises it back to 4,096 before the block after that. The rest is blocks, each with a 2-byte
/// big-endian length in front (the last one takes what is left when the length runs past the end).
///
/// Checks: after a decode throws, every later decode throws ``NGHTTP2Error/headerCompression``; what a block decodes
/// to survives a round trip through a fresh `HPACK.Encoder` and `HPACK.Decoder`; the dynamic table stays within its size.
let tableSizes = [0, 1, 32, 100, 4096, 8192, 65_536, 1 << 22]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHPACKDecoder(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let start, count > 0 else { return 0 }
    let input = UnsafeRawBufferPointer(start: start, count: count)
    let control = input[0]
    let newSize = tableSizes[Int(control & 0x7)]
    let changeBefore = Int(control >> 3) & 0x3
    let raiseAfter = control & 0x20 != 0

    var blocks: [UnsafeRawBufferPointer] = []
    var offset = 1
    while offset < input.count {
        var length = Int(input[offset]) << 8
        if offset + 1 < input.count { length |= Int(input[offset + 1]) }
        let begin = min(offset + 2, input.count)
        let end = min(begin + length, input.count)
        blocks.append(UnsafeRawBufferPointer(rebasing: input[begin..<end]))
        offset = end
    }

    let decoder = try! HPACK.Decoder()
    var failed = false
    for (index, block) in blocks.enumerated() {
        // Between complete blocks a size change always works; after a failed block the decoder is unusable.
        if index == changeBefore {
            do {
                try decoder.setMaxDynamicTableSize(newSize)
                invariant(decoder.maxDynamicTableSize <= max(newSize, 4096), "max size \(decoder.maxDynamicTableSize) after \(newSize)")
            } catch {
                invariant(failed, "setMaxDynamicTableSize(\(newSize)) threw \(error) between complete blocks")
            }
        }
        if raiseAfter && index == changeBefore + 1 {
            do { try decoder.setMaxDynamicTableSize(4096) } catch { invariant(failed, "setMaxDynamicTableSize(4096) threw \(error)") }
        }
        do {
            let fields = try decoder.decode(block)
            invariant(!failed, "a decode succeeded after one failed")
            invariant(decoder.dynamicTableSize <= decoder.maxDynamicTableSize, "table over its size")
            for entry in 0..<decoder.dynamicTableCount { _ = decoder.dynamicTableEntry(at: entry)! }
            roundTrip(fields)
        } catch {
            if failed { invariant(error == .headerCompression, "a later decode threw \(error)") }
            failed = true
        }
    }
    return 0
}

/// Encodes `fields` with a fresh encoder and decodes them with a fresh decoder: the same fields come back.
func roundTrip(_ fields: [HeaderField]) {
    // Invalid UTF-8 came back as U+FFFD (3 bytes each): a field may now be past the decoder's 64 KiB limit.
    guard fields.allSatisfy({ $0.name.utf8.count < 60_000 && $0.value.utf8.count < 60_000 }) else { return }
    let encoder = try! HPACK.Encoder()
    let decoder = try! HPACK.Decoder()
    for _ in 0..<2 {  // the second pass refers to the dynamic table the first filled
        let block = try! encoder.encode(fields)
        let decoded: [HeaderField]
        do {
            decoded = try decoder.decode(block)
        } catch {
            fatalError("re-encoded fields did not decode: \(error)")
        }
        // Names and values come back as they were, and "never indexed" is never lost. libnghttp2's encoder may add
        // it (to `authorization` and to short `cookie`s, against CRIME), so flags are not compared for equality.
        let same =
            decoded.count == fields.count
            && zip(decoded, fields).allSatisfy { $0.name == $1.name && $0.value == $1.value && $0.flags.isSuperset(of: $1.flags) }
        invariant(same, "round trip changed \(fields) into \(decoded)")
    }
}
