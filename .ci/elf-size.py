#!/usr/bin/env python3
"""Section sizes of an ELF file, from its section headers (standard library only, any
architecture): prints `.text`, `.rodata`, `.data`, `.bss` and the flash they take.

usage: elf-size.py FILE
"""
import struct
import sys


def sections(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        raise SystemExit(f"error: {path}: not an ELF file")
    bits64 = data[4] == 2
    end = "<" if data[5] == 1 else ">"
    if bits64:
        shoff, = struct.unpack_from(end + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x3A)
        header = end + "IIQQQQIIQQ"
    else:
        shoff, = struct.unpack_from(end + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(end + "HHH", data, 0x2E)
        header = end + "IIIIIIIIII"
    heads = [struct.unpack_from(header, data, shoff + i * shentsize) for i in range(shnum)]
    strtab_off = heads[shstrndx][4]
    for name_off, _type, _flags, _addr, _off, size, *_ in heads:
        start = strtab_off + name_off
        name = data[start:data.index(b"\0", start)].decode()
        yield name, size


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__.strip())
    sizes = {}
    for name, size in sections(sys.argv[1]):
        # Sum per kind: `.text.foo` counts as `.text`.
        kind = next((k for k in (".text", ".rodata", ".data", ".bss")
                     if name == k or name.startswith(k + ".")), None)
        if kind:
            sizes[kind] = sizes.get(kind, 0) + size
    text, rodata, data = (sizes.get(k, 0) for k in (".text", ".rodata", ".data"))
    print(f".text {text} bytes, .rodata {rodata}, .data {data}, .bss {sizes.get('.bss', 0)}; "
          f"flash (text+rodata+data) {text + rodata + data} bytes")


if __name__ == "__main__":
    main()
