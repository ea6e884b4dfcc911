using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Models.Common;

/// <summary>
/// Gives a module built on the meta device real, uninitialised storage, so that a checkpoint can be read straight
/// into it. Building on a real device would first fill every weight with random numbers that loading then overwrites:
/// for a 600M-parameter transformer that initialisation took longer than reading the checkpoint.
/// </summary>
/// <remarks>
/// Only for modules whose every parameter is about to be overwritten (a strict load): the storage holds whatever
/// memory held before. TorchSharp has no <c>to_empty</c>, so each parameter is swapped for a fresh one the way the
/// module's own <c>to()</c> swaps them: through a settable property of that name (Linear, Conv2d) or through the
/// field of that name plus the module's parameter registry. Buffers are not handled (the models using this have none)
/// and cause an error rather than being left on the meta device.
/// </remarks>
public static class ParameterMaterializer
{
    static readonly MethodInfo Register = typeof(nn.Module).GetMethod("ConditionallyRegisterParameter",
        BindingFlags.Instance | BindingFlags.NonPublic, null, new[] { typeof(string), typeof(Parameter) }, null)
        ?? throw new MissingMethodException("TorchSharp nn.Module.ConditionallyRegisterParameter(string, Parameter) not found");

    /// <summary>
    /// Replaces every parameter of <paramref name="root"/> and its submodules by an uninitialised one of the same
    /// shape and requires_grad on <paramref name="device"/> in <paramref name="dtype"/> (default: each parameter's own).
    /// </summary>
    public static void Materialize(nn.Module root, Device device, ScalarType? dtype = null)
    {
        // TorchSharp's named_modules() leaves out the root itself.
        foreach (var (path, module) in root.named_modules().Prepend(("", root)).ToList())
        {
            if (module.named_buffers(recurse: false).Any())
                throw new NotSupportedException($"{Describe(path, module)}: has buffers, which materialisation does not fill");
            foreach (var (name, old) in module.named_parameters(recurse: false).ToList())
            {
                using var noGrad = no_grad();
                var storage = empty(old.shape, dtype: dtype ?? old.dtype, device: device);
                Runtime.CpuAllocatorTuning.AdviseHugePages(storage);   // before the checkpoint is read into it
                var fresh = new Parameter(storage, old.requires_grad);
                var property = module.GetType().GetProperty(name, BindingFlags.Instance | BindingFlags.Public);
                if (property is not null && property.CanWrite && property.PropertyType.IsAssignableFrom(typeof(Parameter)))
                {
                    property.SetValue(module, fresh);   // TorchSharp's setters dispose the old one and re-register
                    continue;
                }
                var field = FindField(module.GetType(), name)
                            ?? throw new NotSupportedException($"{Describe(path, module)}: parameter '{name}' has neither a settable property nor a field of that name");
                field.SetValue(module, fresh);
                Register.Invoke(module, new object[] { name, fresh });
                old.Dispose();
            }
        }
    }

    static FieldInfo? FindField(Type? type, string name)
    {
        for (; type != null && type != typeof(object); type = type.BaseType)
        {
            var f = type.GetField(name, BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly);
            if (f != null && f.FieldType.IsAssignableFrom(typeof(Parameter))) return f;
        }
        return null;
    }

    static string Describe(string path, nn.Module module) => $"{(path.Length == 0 ? "<root>" : path)} ({module.GetType().Name})";
}
