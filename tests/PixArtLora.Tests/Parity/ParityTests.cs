using System.Reflection;

namespace PixArtLora.Tests.Parity;

/// <summary>
/// One test per case folder under tests/fixtures/parity, or under $PIXART_PARITY_DIR when set.
/// Cases of a kind no runner handles yet are reported as skipped, never as passed.
/// </summary>
public class ParityTests
{
    public static string CaseRoot =>
        Environment.GetEnvironmentVariable("PIXART_PARITY_DIR") is { Length: > 0 } dir ? dir : TestPaths.Fixture("parity");

    public static IEnumerable<object[]> Cases()
    {
        var root = CaseRoot;
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"parity case folder not found: {root}");
        return Directory.GetDirectories(root)
            .Where(d => File.Exists(Path.Combine(d, "case.json")))
            .OrderBy(d => d, StringComparer.Ordinal)
            .Select(d => new object[] { Path.GetFileName(d) });
    }

    static readonly Lazy<Dictionary<string, IParityKind>> Runners = new(() =>
    {
        var map = new Dictionary<string, IParityKind>();
        foreach (var type in typeof(ParityTests).Assembly.GetTypes()
                     .Where(t => typeof(IParityKind).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false }))
        {
            var runner = (IParityKind)Activator.CreateInstance(type)!;
            foreach (var kind in runner.Kinds) map[kind] = runner;
        }
        return map;
    });

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Case(string caseName)
    {
        using var c = new ParityCase(Path.Combine(CaseRoot, caseName));
        Skip.IfNot(Runners.Value.TryGetValue(c.Kind, out var runner), $"no runner for kind '{c.Kind}' yet");
        using var scope = TorchSharp.torch.NewDisposeScope();
        runner!.Run(c);
    }
}
