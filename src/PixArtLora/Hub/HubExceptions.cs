namespace PixArtLora.Hub;

/// <summary>A model or dataset could not be made available locally; the message says which file and why.</summary>
public class HubException : Exception
{
    public HubException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>HTTP 401/403: a gated or private repository, or a token the Hub refused.</summary>
public sealed class HubAccessDeniedException : HubException
{
    /// <summary>The page where the user logs in or accepts the terms.</summary>
    public string RepoPage { get; }

    public HubAccessDeniedException(string message, string repoPage) : base(message) { RepoPage = repoPage; }
}

/// <summary>HTTP 404: no such repository, revision or file.</summary>
public sealed class HubNotFoundException : HubException
{
    public HubNotFoundException(string message) : base(message) { }
}

/// <summary>Offline mode (or no network) and the needed file is not in the cache.</summary>
public sealed class HubFileMissingException : HubException
{
    public HubFileMissingException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>A downloaded file whose size or hash differs from what the Hub announced.</summary>
public sealed class HubIntegrityException : HubException
{
    public HubIntegrityException(string message) : base(message) { }
}
