// MSBuild inline task: marks one GLIBCXX version requirement of an ELF64 shared library weak.
// See LibTorchSharpGlibcxxFix.targets for why. Written against the ELF spec (gABI + GNU symbol
// versioning): Elf64_Verneed {vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32},
// Elf64_Vernaux {vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32}.
using System;
using System.IO;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public class PatchGlibcxxVersionNeed : Task
{
    [Required] public string LibraryPath { get; set; } = "";
    [Required] public string VersionName { get; set; } = "";

    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 2;

    public override bool Execute()
    {
        if (SystemLibstdcxxHas(VersionName))
        {
            Log.LogMessage(MessageImportance.Low, $"libstdc++ provides {VersionName}; {LibraryPath} left as is.");
            return true;
        }
        byte[] elf = File.ReadAllBytes(LibraryPath);
        long entry = FindVernauxFlags(elf);
        if (entry < 0)
        {
            Log.LogMessage(MessageImportance.Low, $"{LibraryPath} does not require {VersionName}.");
            return true;
        }
        ushort flags = BitConverter.ToUInt16(elf, (int)entry);
        if ((flags & VerFlgWeak) != 0) return true; // already patched
        flags |= VerFlgWeak;
        BitConverter.GetBytes(flags).CopyTo(elf, entry);
        // The output file may be a hard link into the NuGet cache: write a new file and rename it
        // over the link so the cache copy is never touched.
        string tmp = LibraryPath + ".glibcxx-patch.tmp";
        File.WriteAllBytes(tmp, elf);
        File.Replace(tmp, LibraryPath, null); // rename(2): atomic, breaks the hard link
        Log.LogMessage(MessageImportance.High, $"Marked {VersionName} weak in {LibraryPath} (Debian 12 / Ubuntu 22.04 libstdc++ lacks it).");
        return true;
    }

    static bool SystemLibstdcxxHas(string version)
    {
        string[] candidates = {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6",
            "/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/aarch64-linux-gnu/libstdc++.so.6" };
        byte[] needle = Encoding.ASCII.GetBytes(version + "\0");
        foreach (var path in candidates)
        {
            if (!File.Exists(path)) continue;
            byte[] lib = File.ReadAllBytes(path);
            return IndexOf(lib, needle) >= 0;
        }
        return false; // unknown system: patching is harmless, so do it
    }

    static int IndexOf(byte[] hay, byte[] needle)
    {
        for (int i = 0; i <= hay.Length - needle.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return i;
        }
        return -1;
    }

    // Returns the file offset of vna_flags for VersionName, or -1.
    long FindVernauxFlags(byte[] elf)
    {
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F' || elf[4] != 2)
            throw new InvalidDataException($"{LibraryPath}: not an ELF64 file");
        long shoff = (long)BitConverter.ToUInt64(elf, 0x28);
        int shentsize = BitConverter.ToUInt16(elf, 0x3A);
        int shnum = BitConverter.ToUInt16(elf, 0x3C);
        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            uint type = BitConverter.ToUInt32(elf, (int)sh + 4);
            if (type != ShtGnuVerneed) continue;
            long secOff = (long)BitConverter.ToUInt64(elf, (int)sh + 0x18);
            uint link = BitConverter.ToUInt32(elf, (int)sh + 0x28);
            long strOff = (long)BitConverter.ToUInt64(elf, (int)(shoff + (long)link * shentsize) + 0x18);
            long vn = secOff;
            while (true)
            {
                ushort cnt = BitConverter.ToUInt16(elf, (int)vn + 2);
                uint aux = BitConverter.ToUInt32(elf, (int)vn + 8);
                uint next = BitConverter.ToUInt32(elf, (int)vn + 12);
                long va = vn + aux;
                for (int k = 0; k < cnt; k++)
                {
                    uint name = BitConverter.ToUInt32(elf, (int)va + 8);
                    if (ReadCString(elf, strOff + name) == VersionName) return va + 4;
                    uint vnext = BitConverter.ToUInt32(elf, (int)va + 12);
                    if (vnext == 0) break;
                    va += vnext;
                }
                if (next == 0) break;
                vn += next;
            }
        }
        return -1;
    }

    static string ReadCString(byte[] data, long offset)
    {
        int end = (int)offset;
        while (data[end] != 0) end++;
        return Encoding.ASCII.GetString(data, (int)offset, end - (int)offset);
    }
}
