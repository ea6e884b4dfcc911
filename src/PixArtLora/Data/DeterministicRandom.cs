namespace PixArtLora.Data;

/// <summary>
/// A small counter-free random stream (SplitMix64) whose output is fixed by its key forever, unlike
/// System.Random whose seeded sequence is not guaranteed across .NET versions. Streams are keyed by
/// (seed, epoch, item) so that any batch can be reproduced on its own, which makes resuming exact.
/// </summary>
internal sealed class DeterministicRandom
{
    ulong _state;

    DeterministicRandom(ulong state) => _state = state;

    /// <summary>A stream determined by <paramref name="seed"/> and any number of further keys.</summary>
    public static DeterministicRandom For(long seed, params long[] keys)
    {
        ulong s = Mix((ulong)seed ^ 0x9E3779B97F4A7C15UL);
        foreach (long k in keys) s = Mix(s ^ Mix((ulong)k + 0x632BE59BD9B4E019UL));
        return new DeterministicRandom(s);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="n"/>), without modulo bias.</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        ulong bound = (ulong)n, threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> list)
    {
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
    }

    static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
