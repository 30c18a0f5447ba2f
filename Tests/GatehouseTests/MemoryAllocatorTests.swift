import Testing

@testable import Gatehouse

@Suite struct MemoryAllocatorTests {
    private let maps = """
        55d4c0a00000-55d4c0a21000 r--p 00000000 fe:01 1311 /usr/local/bin/gatehouse
        7f0939c00000-7f0939cd0000 r--p 00000000 fe:01 2222 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0
        7f0939cd0000-7f0939d40000 r-xp 000d0000 fe:01 2222 /usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0
        7f0939d40000-7f0939d60000 rw-p 00000000 00:00 0
        7f0939e00000-7f0939f00000 r-xp 00000000 fe:01 3333 /opt/a folder/libc.so.6
        """

    @Test func findsTheFileMappedAtAnAddress() {
        #expect(MemoryAllocator.mappedFile(containing: 0x7f09_39cd_d930, maps: maps) == "libmimalloc.so.2.0")
        #expect(MemoryAllocator.mappedFile(containing: 0x7f09_39c0_0000, maps: maps) == "libmimalloc.so.2.0")
        #expect(MemoryAllocator.mappedFile(containing: 0x55d4_c0a0_0010, maps: maps) == "gatehouse")
        #expect(
            MemoryAllocator.mappedFile(containing: 0x7f09_39e0_0001, maps: maps) == "libc.so.6", "a path with a blank")
    }

    @Test func saysNothingOutsideNamedMappings() {
        #expect(MemoryAllocator.mappedFile(containing: 0x7f09_39d4_0010, maps: maps) == nil, "anonymous mapping")
        #expect(MemoryAllocator.mappedFile(containing: 0x7f09_39d6_0000, maps: maps) == nil, "end is exclusive")
        #expect(MemoryAllocator.mappedFile(containing: 0x1000, maps: maps) == nil)
        #expect(MemoryAllocator.mappedFile(containing: 0x1000, maps: "") == nil)
        #expect(MemoryAllocator.mappedFile(containing: 0x1000, maps: "garbage-line\nzz-yy r--p 0 0 0 /x") == nil)
    }
}
