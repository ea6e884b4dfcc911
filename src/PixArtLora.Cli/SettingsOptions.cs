using System.CommandLine;
using PixArtLora.Configs;

namespace PixArtLora.Cli;

/// <summary>
/// Turns every property of a settings record into a command-line option (snake_case name, kebab-case
/// alias, the record's aliases), with an optional <c>-c/--config</c> YAML file. Precedence: defaults,
/// then the YAML file, then flags given on the command line.
/// </summary>
public sealed class SettingsOptions<T> where T : new()
{
    readonly List<(SettingProperty Prop, Option Option)> _options = new();
    public Option<string?> Config { get; } = new("--config", "-c") { Description = "YAML file of settings (same names as the flags); flags override it" };

    public SettingsOptions(Command command)
    {
        var defaults = new T();
        command.Options.Add(Config);
        foreach (var prop in SettingsBinder.Properties(typeof(T)))
        {
            var aliases = new List<string>();
            void Add(string snake)
            {
                foreach (var n in new[] { "--" + snake, "--" + snake.Replace('_', '-') })
                    if (n != "--" + prop.Name && !aliases.Contains(n)) aliases.Add(n);
            }
            Add(prop.Name);
            foreach (var a in prop.Aliases) Add(a);
            Option option = prop.IsList
                ? new Option<string[]>("--" + prop.Name, aliases.ToArray()) { Arity = ArgumentArity.OneOrMore }
                : new Option<string>("--" + prop.Name, aliases.ToArray()) { Arity = prop.IsFlag ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne };
            option.Description = SettingsBinder.Describe(prop, defaults);
            option.HelpName = prop.IsFlag ? "true|false" : prop.IsList ? "value" : prop.ValueType.Name.ToLowerInvariant();
            command.Options.Add(option);
            _options.Add((prop, option));
        }
    }

    /// <summary>Builds the settings: defaults, then the YAML file if given, then explicit flags.</summary>
    public T Bind(ParseResult parse)
    {
        var settings = new T();
        if (parse.GetValue(Config) is { Length: > 0 } yaml) SettingsBinder.ApplyYaml(settings!, yaml);
        foreach (var (prop, option) in _options)
        {
            var result = parse.GetResult(option);
            if (result == null || result.Implicit) continue;
            object raw = option is Option<string[]> list
                ? parse.GetValue(list) ?? Array.Empty<string>()
                : parse.GetValue((Option<string>)option) ?? "";
            SettingsBinder.Set(settings!, prop, raw, $"--{prop.Name}");
        }
        return settings;
    }
}
