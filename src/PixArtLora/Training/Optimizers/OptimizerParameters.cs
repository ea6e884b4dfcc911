using TorchSharp.Modules;

namespace PixArtLora.Training.Optimizers;

/// <summary>Checks shared by the optimizers on the parameter list they are given.</summary>
static class OptimizerParameters
{
    public static List<(string Name, Parameter Parameter)> Validate(IEnumerable<(string Name, Parameter Parameter)> parameters, string optimizer)
    {
        var list = parameters.ToList();
        if (list.Count == 0)
            throw new ArgumentException($"{optimizer}: no trainable parameters were given (is every parameter frozen?)");
        var seen = new HashSet<string>();
        foreach (var (name, p) in list)
        {
            if (!seen.Add(name)) throw new ArgumentException($"{optimizer}: parameter name '{name}' appears twice");
            if (!p.is_floating_point())
                throw new ArgumentException($"{optimizer}: parameter '{name}' has dtype {p.dtype}, expected a floating-point dtype");
        }
        return list;
    }

    public static void DropGradients(IEnumerable<(string Name, Parameter Parameter)> parameters)
    {
        foreach (var (_, p) in parameters) p.grad = null;
    }
}
