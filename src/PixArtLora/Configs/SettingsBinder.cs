using System.Globalization;
using System.Reflection;
using System.Text.Json.Serialization;
using YamlDotNet.RepresentationModel;

namespace PixArtLora.Configs;

/// <summary>One settable property of a settings record: its snake_case name, aliases, type and help.</summary>
public sealed record SettingProperty(string Name, IReadOnlyList<string> Aliases, PropertyInfo Property, string Help)
{
    public Type ValueType => Nullable.GetUnderlyingType(Property.PropertyType) ?? Property.PropertyType;
    public bool IsFlag => ValueType == typeof(bool);
    public bool IsList => ValueType == typeof(string[]);
}

/// <summary>
/// Fills a settings record (properties named with [JsonPropertyName]) from YAML files and from
/// command-line strings with one set of conversion rules, so a YAML key and a flag mean the same thing
/// and errors name the key, the source and the expected type.
/// </summary>
public static class SettingsBinder
{
    public static IReadOnlyList<SettingProperty> Properties(Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite && p.GetCustomAttribute<JsonPropertyNameAttribute>() != null)
            .Select(p => new SettingProperty(
                p.GetCustomAttribute<JsonPropertyNameAttribute>()!.Name,
                p.GetCustomAttribute<SettingAliasAttribute>()?.Names ?? Array.Empty<string>(),
                p,
                p.GetCustomAttribute<SettingHelpAttribute>()?.Text ?? ""))
            .ToList();

    public static SettingProperty? Find(Type type, string key)
    {
        string k = key.TrimStart('-').Replace('-', '_');
        return Properties(type).FirstOrDefault(p => p.Name == k || p.Aliases.Contains(k));
    }

    /// <summary>Applies every key of a YAML mapping file onto <paramref name="target"/>. Unknown keys are errors.</summary>
    public static void ApplyYaml(object target, string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file not found: {path}", path);
        var stream = new YamlStream();
        try
        {
            using var reader = new StreamReader(path);
            stream.Load(reader);
        }
        catch (YamlDotNet.Core.YamlException e)
        {
            throw new FormatException($"{path}: invalid YAML at line {e.Start.Line}: {e.Message}");
        }
        if (stream.Documents.Count == 0) return;
        if (stream.Documents[0].RootNode is not YamlMappingNode root)
            throw new FormatException($"{path}: expected a mapping of setting names to values at the top level");
        foreach (var (keyNode, valueNode) in root.Children)
        {
            string key = ((YamlScalarNode)keyNode).Value ?? "";
            var prop = Find(target.GetType(), key)
                ?? throw new FormatException($"{path}: unknown setting '{key}' (known: {string.Join(", ", Properties(target.GetType()).Select(p => p.Name))})");
            object? raw = valueNode switch
            {
                YamlScalarNode s => s.Value,
                YamlSequenceNode seq => seq.Children.Select(c => ((YamlScalarNode)c).Value ?? "").ToArray(),
                _ => throw new FormatException($"{path}: setting '{key}' must be a scalar or a list"),
            };
            Set(target, prop, raw, $"{path}: {key}");
        }
    }

    /// <summary>Sets one property from a string (or list of strings), converting to its type.</summary>
    public static void Set(object target, SettingProperty prop, object? raw, string source)
    {
        object? value;
        try { value = Convert(prop, raw); }
        catch (FormatException e) { throw new FormatException($"{source}: {e.Message}"); }
        prop.Property.SetValue(target, value);
    }

    static object? Convert(SettingProperty prop, object? raw)
    {
        var t = prop.ValueType;
        bool nullable = !prop.Property.PropertyType.IsValueType || Nullable.GetUnderlyingType(prop.Property.PropertyType) != null;
        if (prop.IsList)
            return raw switch
            {
                null => Array.Empty<string>(),
                string[] arr => arr,
                string s => new[] { s },
                _ => throw new FormatException($"expected a list of strings for {prop.Name}"),
            };
        if (raw is string[] many)
        {
            if (many.Length != 1) throw new FormatException($"{prop.Name} takes one value, got {many.Length}");
            raw = many[0];
        }
        string? text = raw as string;
        if (text == null || (nullable && (text == "" || text is "null" or "~" or "None")))
        {
            if (t == typeof(bool) && text == "") return true; // a bare flag
            if (nullable) return null;
            throw new FormatException($"{prop.Name} needs a value");
        }
        var inv = CultureInfo.InvariantCulture;
        if (t == typeof(string)) return text;
        if (t == typeof(bool))
            return text.ToLowerInvariant() switch
            {
                "" or "true" or "1" or "yes" or "on" => true,
                "false" or "0" or "no" or "off" => false,
                _ => throw new FormatException($"expected true or false for {prop.Name}, got '{text}'"),
            };
        if (t == typeof(int))
            return int.TryParse(text, NumberStyles.Integer, inv, out var i) ? i : throw new FormatException($"expected an integer for {prop.Name}, got '{text}'");
        if (t == typeof(long))
            return long.TryParse(text, NumberStyles.Integer, inv, out var l) ? l : throw new FormatException($"expected an integer for {prop.Name}, got '{text}'");
        if (t == typeof(double))
            return double.TryParse(text, NumberStyles.Float, inv, out var d) ? d : throw new FormatException($"expected a number for {prop.Name}, got '{text}'");
        if (t == typeof(float))
            return float.TryParse(text, NumberStyles.Float, inv, out var f) ? f : throw new FormatException($"expected a number for {prop.Name}, got '{text}'");
        throw new NotSupportedException($"setting {prop.Name} has unsupported type {t.Name}");
    }

    /// <summary>A short "(type, default X)" text for help output.</summary>
    public static string Describe(SettingProperty prop, object defaults)
    {
        var v = prop.Property.GetValue(defaults);
        string shown = v switch
        {
            null => "none",
            string[] arr => arr.Length == 0 ? "none" : string.Join(", ", arr),
            double d => d.ToString("G", CultureInfo.InvariantCulture),
            bool b => b ? "true" : "false",
            _ => System.Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
        };
        return $"{prop.Help} (default: {shown})".TrimStart();
    }
}
