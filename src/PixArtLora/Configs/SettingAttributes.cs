namespace PixArtLora.Configs;

/// <summary>Other names a setting is known by (e.g. the seed script's <c>dataset_name</c> for <c>dataset</c>).</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SettingAliasAttribute(params string[] names) : Attribute
{
    public IReadOnlyList<string> Names { get; } = names;
}

/// <summary>What a setting does, shown in <c>--help</c>.</summary>
[AttributeUsage(AttributeTargets.Property)]
public sealed class SettingHelpAttribute(string text) : Attribute
{
    public string Text { get; } = text;
}
