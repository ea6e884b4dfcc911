using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http;

namespace PixArtLora.Server;

/// <summary>
/// JSON as the API speaks it (camelCase, enums as words), responses written by hand so that every error, whatever
/// its origin, has the same shape: <c>{"error": "..."}</c>.
/// </summary>
public static class ServerJson
{
    public static JsonSerializerOptions Options { get; } = Create(indented: false, strict: false);
    internal static JsonSerializerOptions Indented { get; } = Create(indented: true, strict: false);

    // Request bodies are read strictly: an unknown field is more likely a typo ("step") than something to ignore.
    static readonly JsonSerializerOptions Strict = Create(indented: false, strict: true);

    static JsonSerializerOptions Create(bool indented, bool strict)
    {
        var o = new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = indented };
        o.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        if (strict)
        {
            o.UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow;
            o.NumberHandling = JsonNumberHandling.Strict;
        }
        return o;
    }

    public static async Task WriteAsync<T>(HttpContext context, int status, T value)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(context.Response.Body, value, Options, context.RequestAborted);
    }

    public static Task WriteErrorAsync(HttpContext context, int status, string message) =>
        WriteAsync(context, status, new ErrorBody(message));

    /// <summary>Reads a JSON request body, turning every way it can be wrong into a <see cref="RequestValidationException"/>.</summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request) where T : class
    {
        if (request.ContentType is not { } type || !type.StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
            throw new UnsupportedContentTypeException($"request body: Content-Type must be application/json (got '{request.ContentType}')");
        try
        {
            return await JsonSerializer.DeserializeAsync<T>(request.Body, Strict, request.HttpContext.RequestAborted)
                   ?? throw new RequestValidationException("request body: expected a JSON object, got null");
        }
        catch (JsonException e)
        {
            throw new RequestValidationException(Describe(e, typeof(T)));
        }
    }

    // System.Text.Json's messages name .NET types; say what the caller sent and where instead.
    static string Describe(JsonException e, Type root)
    {
        string field = e.Path is { Length: > 1 } path ? path.TrimStart('$', '.') : "";
        string where = field.Length > 0 ? $" at {field}" : "";
        string line = e.LineNumber is { } l ? $" (line {l + 1}, byte {e.BytePositionInLine + 1})" : "";
        if (e.Message.Contains("could not be mapped to any .NET member", StringComparison.Ordinal))
            return $"request body: unknown field{where}";
        if (e.Message.Contains("could not be converted", StringComparison.Ordinal) && field.Length == 0)
            return "request body: must be a JSON object";
        if (e.Message.Contains("could not be converted", StringComparison.Ordinal))
            return ExpectedKind(root, field) is { } kind
                ? $"request body: {field} must be {kind}{line}"
                : $"request body: wrong type of value{where}{line}";
        if (e.Message.Contains("input does not contain any JSON tokens", StringComparison.Ordinal))
            return "request body: empty; expected a JSON object";
        return $"request body: not valid JSON{where}{line}";
    }

    // "loras[0].scale" → the declared type of that member of T, described in JSON terms.
    static string? ExpectedKind(Type root, string field)
    {
        Type? type = root;
        foreach (var raw in field.Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            int bracket = raw.IndexOf('[');
            string name = bracket >= 0 ? raw[..bracket] : raw;
            if (name.Length == 0 || type == null) return null;
            var prop = type.GetProperties().FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase));
            if (prop == null) return null;
            type = prop.PropertyType;
            if (bracket >= 0) type = type.IsGenericType ? type.GetGenericArguments()[0] : null;
        }
        if (type == null) return null;
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (type == typeof(string)) return "a string";
        if (type == typeof(int) || type == typeof(long)) return "an integer";
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type.IsGenericType && typeof(System.Collections.IEnumerable).IsAssignableFrom(type)) return "an array";
        return type.IsClass ? "an object" : null;
    }

    /// <summary>The body of every error response.</summary>
    public sealed record ErrorBody(string Error);
}

/// <summary>A request whose body is not JSON (sent as 415).</summary>
public sealed class UnsupportedContentTypeException(string message) : Exception(message);
