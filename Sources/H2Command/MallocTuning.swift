/// glibc allocator settings for a process that streams large bodies.
///
/// Bodies travel in chunks of up to 64 KiB that are allocated on one side of a stream and freed on the other. With
/// glibc's defaults, every time the free space at the top of an arena passes 128 KiB it is handed back to the kernel
/// (`madvise`), and the next chunk faults it in again: a 1 GiB h2c download made about 2,000 such calls and took
/// about 40% longer. `h2` keeps up to 8 MiB of freed memory per arena and serves blocks below 4 MiB from the heap
/// rather than from `mmap`. An application that embeds `ClientSession` or `ServerSession` and moves large bodies
/// can do the same with `mallopt` or the `MALLOC_TRIM_THRESHOLD_` and `MALLOC_MMAP_THRESHOLD_` environment variables.
enum MallocTuning {
    static func apply() {
        #if os(Linux) && canImport(Glibc)
        _ = glibcMallopt(trimThreshold, 8 << 20)
        _ = glibcMallopt(mmapThreshold, 4 << 20)
        #endif
    }

    // <malloc.h> is not part of Swift's Glibc module; these are its `M_TRIM_THRESHOLD` and `M_MMAP_THRESHOLD`.
    private static let trimThreshold: Int32 = -1
    private static let mmapThreshold: Int32 = -3
}

@_silgen_name("mallopt")
private func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
