using System.Globalization;
using System.Text;
using PixArtLora.IO;
using static TorchSharp.torch;

namespace PixArtLora.Training;

/// <summary>
/// All randomness of a training run, in a form a checkpoint can save and restore exactly. Each use gets its
/// own named CPU <see cref="Generator"/> stream ("data" for shuffling, "noise" for noise and timesteps,
/// "dropout" for caption dropout, ...), seeded from the run seed and the stream name, so that adding a draw
/// in one place never shifts the numbers another place sees. Draw on the CPU and move the result to the
/// device: CPU streams give the same numbers on every machine, which makes runs reproducible across devices.
/// The global torch generator (used by modules such as dropout) is seeded too and saved with the streams.
/// </summary>
public sealed class TrainingRandom : IDisposable
{
    /// <summary>Name under which the global torch generator's state is saved.</summary>
    public const string GlobalStreamName = "torch.global";

    readonly Dictionary<string, Generator> _streams = new(StringComparer.Ordinal);

    /// <summary>Seeds every stream from <paramref name="seed"/> and seeds the global torch generator with it.</summary>
    public TrainingRandom(long seed)
    {
        Seed = seed;
        manual_seed(seed);
    }

    /// <summary>The run seed (restored by <see cref="Load"/>: a resumed run continues the original run's sequences).</summary>
    public long Seed { get; private set; }

    /// <summary>File written by <see cref="Save"/> inside a checkpoint folder.</summary>
    public const string FileName = "random.safetensors";

    /// <summary>The generator of stream <paramref name="name"/>, created (and seeded) on first use.</summary>
    public Generator Stream(string name)
    {
        if (name == GlobalStreamName) throw new ArgumentException($"'{GlobalStreamName}' is reserved for the global torch generator");
        if (!_streams.TryGetValue(name, out var g))
        {
            g = new Generator((ulong)StreamSeed(Seed, name), CPU);
            _streams[name] = g;
        }
        return g;
    }

    /// <summary>A permutation of 0..n-1 from stream <paramref name="stream"/> (e.g. the order of an epoch).</summary>
    public long[] Permutation(string stream, long n)
    {
        using var perm = randperm(n, ScalarType.Int64, CPU, generator: Stream(stream));
        return perm.data<long>().ToArray();
    }

    /// <summary>
    /// The order of epoch <paramref name="epoch"/> over <paramref name="n"/> items: a function of the run seed
    /// and the epoch only, so a run resumed in the middle of an epoch sees the same order without saving it.
    /// </summary>
    public long[] EpochPermutation(long epoch, long n)
    {
        using var g = new Generator((ulong)StreamSeed(Seed, $"data/epoch/{epoch}"), CPU);
        using var perm = randperm(n, ScalarType.Int64, CPU, generator: g);
        return perm.data<long>().ToArray();
    }

    /// <summary>Standard normal numbers from <paramref name="stream"/>, drawn on the CPU and moved to <paramref name="device"/>.</summary>
    public Tensor Randn(string stream, long[] shape, ScalarType dtype, Device device)
    {
        var t = randn(shape, ScalarType.Float32, CPU, generator: Stream(stream));
        return t.to(dtype, device);
    }

    /// <summary>Uniform [0, 1) numbers from <paramref name="stream"/>, drawn on the CPU and moved to <paramref name="device"/>.</summary>
    public Tensor Rand(string stream, long[] shape, ScalarType dtype, Device device)
    {
        var t = rand(shape, ScalarType.Float32, CPU, generator: Stream(stream));
        return t.to(dtype, device);
    }

    /// <summary>Integers in [0, high) from <paramref name="stream"/> (e.g. timesteps), on <paramref name="device"/>.</summary>
    public Tensor RandInt(string stream, long high, long[] shape, Device device)
    {
        var t = randint(high, shape, ScalarType.Int64, CPU, generator: Stream(stream));
        return t.to(device);
    }

    /// <summary>The state of every stream used so far plus the global generator, as uint8 tensors (copies).</summary>
    public IReadOnlyDictionary<string, Tensor> SaveStates()
    {
        var states = new Dictionary<string, Tensor>(StringComparer.Ordinal)
        {
            [GlobalStreamName] = get_rng_state().DetachFromDisposeScope(),
        };
        foreach (var (name, g) in _streams) states[name] = g.get_state().DetachFromDisposeScope();
        return states;
    }

    /// <summary>
    /// Restores states saved by <see cref="SaveStates"/>. Streams in the saved set are created if not used
    /// yet in this process; streams used here but absent from the set keep their current state.
    /// </summary>
    public void LoadStates(IReadOnlyDictionary<string, Tensor> states)
    {
        foreach (var (name, state) in states)
        {
            if (state.dtype != ScalarType.Byte)
                throw new InvalidDataException($"random state '{name}' has dtype {state.dtype}, expected uint8");
            if (name == GlobalStreamName) set_rng_state(state);
            else Stream(name).set_state(state);
        }
    }

    /// <summary>Writes the seed and every stream's state to <c>random.safetensors</c> in <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        using var scope = NewDisposeScope();
        SafetensorsWriter.Save(Path.Combine(folder, FileName), SaveStates(),
            new Dictionary<string, string> { ["seed"] = Seed.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Restores the seed and the stream states written by <see cref="Save"/>.</summary>
    public void Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"random state file {path} is missing", path);
        using var scope = NewDisposeScope();
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue("seed", out var seedText)
            || !long.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out long seed))
            throw new InvalidDataException($"{path}: metadata 'seed' is missing or not an integer");
        // Streams derived from the old seed that the checkpoint does not cover would now be wrong: reseed them from
        // the checkpoint's seed. The Generator objects stay the same, because users hold them (LoRA dropout).
        Seed = seed;
        foreach (var (name, g) in _streams) g.manual_seed(StreamSeed(seed, name));
        LoadStates(file.Entries.Keys.ToDictionary(k => k, k => file.Read(k)));
    }

    /// <summary>A stable 63-bit seed for a stream: SplitMix64 of the run seed mixed with FNV-1a of the name.</summary>
    static long StreamSeed(long seed, string name)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(name)) { h ^= b; h *= 1099511628211UL; }
        ulong z = unchecked((ulong)seed + 0x9E3779B97F4A7C15UL * (h | 1));
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (long)(z >> 1);
    }

    public void Dispose()
    {
        foreach (var g in _streams.Values) g.Dispose();
        _streams.Clear();
    }
}
