using ParquetSharp;
using PixArtLora.Hub;
using static PixArtLora.Tests.Hub.FakeHubServer;

namespace PixArtLora.Tests.Hub;

/// <summary>Datasets: only their parquet files are fetched, into <c>datasets--org--name</c>, also from a converted-parquet branch.</summary>
public class HubDatasetTests
{
    static byte[] ParquetShard(string[] captions)
    {
        string path = Path.Combine(TestPaths.NewTempDir("parquet"), "shard.parquet");
        using (var writer = new ParquetFileWriter(path, new Column[] { new Column<string>("text"), new Column<byte[]>("image") }))
        {
            using var group = writer.AppendRowGroup();
            using (var text = group.NextColumn().LogicalWriter<string>()) text.WriteBatch(captions);
            using (var image = group.NextColumn().LogicalWriter<byte[]>()) image.WriteBatch(captions.Select(c => new byte[] { 0x89, (byte)c.Length }).ToArray());
            writer.Close();
        }
        return File.ReadAllBytes(path);
    }

    static string[] ReadCaptions(string path)
    {
        using var reader = new ParquetFileReader(path);
        using var group = reader.RowGroup(0);
        using var column = group.Column(0).LogicalReader<string>();
        return column.ReadAll((int)group.MetaData.NumRows);
    }

    [Theory]
    [InlineData("main")]
    [InlineData("refs/convert/parquet")]
    public async Task DatasetParquetFilesAreDownloadedIntoTheDatasetCache(string revision)
    {
        using var server = new FakeHubServer();
        var repo = server.Add(new FakeRepo { Id = "someone/pokemon-captions", Type = HubRepoType.Dataset });
        repo.Branches.Add(revision);
        repo.Files["README.md"] = new FakeFile("# captions"u8.ToArray(), Lfs: false);
        repo.Files["data/train-00000-of-00002.parquet"] = new FakeFile(ParquetShard(new[] { "a drawing of a green pokemon", "a red bird" }), Lfs: true);
        repo.Files["data/train-00001-of-00002.parquet"] = new FakeFile(ParquetShard(new[] { "a yellow mouse" }), Lfs: true);
        string cache = TestPaths.NewTempDir("hub-cache");
        using var client = new HubClient(new HubOptions { Endpoint = server.Endpoint, CacheDir = cache, RetryDelay = TimeSpan.FromMilliseconds(10) });

        var snap = await client.ResolveAsync("someone/pokemon-captions", HubRepoType.Dataset, new[] { "*.parquet" }, revision);

        Assert.Equal(new[] { "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet" }, snap.Files);
        Assert.Equal(new[] { "a drawing of a green pokemon", "a red bird" }, ReadCaptions(snap.PathOf(snap.Files[0])));
        Assert.Equal(new[] { "a yellow mouse" }, ReadCaptions(snap.PathOf(snap.Files[1])));
        string repoDir = Path.Combine(cache, "datasets--someone--pokemon-captions");
        Assert.Equal(Path.Combine(repoDir, "snapshots", repo.Commit), snap.Folder);
        Assert.Equal(repo.Commit, File.ReadAllText(Path.Combine(new[] { repoDir, "refs" }.Concat(revision.Split('/')).ToArray())));
        Assert.All(server.Requests.Where(r => !r.Cdn), r => Assert.StartsWith(r.Path.StartsWith("/api/") ? "/api/datasets/" : "/datasets/", r.Path));
        Assert.DoesNotContain(server.Requests, r => r.Path.EndsWith("README.md"));

        using var offline = new HubClient(new HubOptions { Endpoint = server.Endpoint, CacheDir = cache, Offline = true });
        var again = await offline.ResolveAsync("someone/pokemon-captions", HubRepoType.Dataset, new[] { "*.parquet" }, revision);
        Assert.Equal(snap.Files, again.Files);
    }
}
