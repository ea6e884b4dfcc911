using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Common;

/// <summary>
/// Finds and swaps submodules by their dotted state-dict path (<c>transformer_blocks.3.attn1.to_q</c>,
/// <c>transformer_blocks.3.attn1.to_out.0</c>). This is how adapters (LoRA) wrap a projection without the model knowing:
/// the parent's field and its registered child are replaced together, so forward uses the wrapper and
/// <c>state_dict()</c> shows the wrapper's keys under the same path.
/// </summary>
/// <remarks>
/// A child can be replaced when its parent holds it in a field named like the child whose type accepts the
/// replacement (PixArt's models type every Linear field as <c>Module&lt;Tensor, Tensor&gt;</c>), or when the parent is
/// a <c>ModuleList&lt;Module&lt;Tensor, Tensor&gt;&gt;</c> (diffusers' <c>to_out</c> and <c>ff.net</c>).
/// </remarks>
public static class ModuleSurgery
{
    /// <summary>The submodule at <paramref name="path"/> ("" is the root).</summary>
    public static nn.Module Get(nn.Module root, string path)
    {
        var module = root;
        if (path.Length == 0) return module;
        string walked = "";
        foreach (var part in path.Split('.'))
        {
            var child = module.named_children().FirstOrDefault(c => c.name == part).module;
            walked = walked.Length == 0 ? part : walked + "." + part;
            module = child ?? throw new KeyNotFoundException(
                $"no submodule '{walked}' in {root.GetType().Name} (children of '{Parent(walked)}': " +
                $"{string.Join(", ", module.named_children().Select(c => c.name))})");
        }
        return module;
    }

    /// <summary>Every <see cref="Linear"/> in <paramref name="root"/> with its path, in registration order.</summary>
    public static IEnumerable<(string Path, Linear Linear)> Linears(nn.Module root) =>
        root.named_modules().Where(m => m.module is Linear).Select(m => (m.name, (Linear)m.module));

    /// <summary>
    /// Replaces the submodule at <paramref name="path"/> with <c>replace(current)</c> and returns the replacement.
    /// Throws when the path does not exist or the parent cannot hold the replacement.
    /// </summary>
    public static nn.Module<Tensor, Tensor> Replace(nn.Module root, string path, Func<nn.Module<Tensor, Tensor>, nn.Module<Tensor, Tensor>> replace)
    {
        int dot = path.LastIndexOf('.');
        string parentPath = dot < 0 ? "" : path[..dot], name = dot < 0 ? path : path[(dot + 1)..];
        if (name.Length == 0) throw new ArgumentException("the root module cannot be replaced", nameof(path));
        var parent = Get(root, parentPath);
        var current = Get(parent, name) as nn.Module<Tensor, Tensor>
                      ?? throw new InvalidOperationException($"'{path}' is a {Get(parent, name).GetType().Name}, not a Module<Tensor, Tensor>");
        var replacement = replace(current);
        if (ReferenceEquals(replacement, current)) return current;

        if (parent is ModuleList<nn.Module<Tensor, Tensor>> list)
        {
            list[int.Parse(name)] = replacement;
        }
        else
        {
            var field = FindField(parent.GetType(), name)
                        ?? throw new InvalidOperationException($"'{path}': {parent.GetType().Name} has no field '{name}' to hold a replacement");
            if (!field.FieldType.IsInstanceOfType(replacement))
                throw new InvalidOperationException(
                    $"'{path}': field {parent.GetType().Name}.{name} is a {field.FieldType.Name} and cannot hold a {replacement.GetType().Name}");
            field.SetValue(parent, replacement);
        }
        // Re-register under the same name: register_module(name, null) removes the old child.
        parent.register_module(name, null!);
        parent.register_module(name, replacement);
        return replacement;
    }

    static FieldInfo? FindField(Type? type, string name)
    {
        for (; type != null && type != typeof(object); type = type.BaseType)
        {
            var f = type.GetField(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            if (f != null) return f;
        }
        return null;
    }

    static string Parent(string path) => path.Contains('.') ? path[..path.LastIndexOf('.')] : "";
}
