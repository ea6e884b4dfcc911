using System.Text.Json;
using PixArtLora.Registry;
using PixArtLora.Server;
using Xunit.Abstractions;

namespace PixArtLora.Tests.Server;

/// <summary>
/// The page in headless Chromium, used the way a person would: type a prompt, click Generate, watch the progress, get
/// images in the gallery, reload and still have them. Screenshots land in the test output folder under screenshots/.
/// </summary>
public class BrowserTests(ITestOutputHelper output)
{
    static readonly string ScreenshotFolder = Path.Combine(AppContext.BaseDirectory, "screenshots");

    [SkippableFact]
    public async Task APersonCanGenerateImagesAndFindThemAgainAfterAReload()
    {
        string? chromium = ChromiumSession.Find();
        Skip.If(chromium == null, "no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does) or $PIXARTLORA_CHROMIUM");

        var backend = new PatternBackend(AspectRatioBins.Diffusers512, new LoraInfo("watercolor-style", 0.8), new LoraInfo("film-grain", 0))
        {
            StepDelay = TimeSpan.FromMilliseconds(40),
        };
        await using var h = await DemoHarness.StartAsync(backend);
        await using var browser = await ChromiumSession.LaunchAsync(chromium!);
        await browser.SetViewportAsync(1280, 900);
        await browser.SetColorSchemeAsync("light");
        await browser.NavigateAsync(h.Server.Url.ToString());
        await browser.WaitForAsync("document.body?.dataset.ready === 'true'", "the form built from /api/info");

        // The form reflects the model: its samplers, its size bins with the square one chosen, its LoRAs.
        Assert.Equal("dpm,ddim,euler", (await browser.EvaluateAsync("[...document.querySelectorAll('#sampler option')].map(o => o.value).join()")).GetString());
        Assert.Equal("512x512", (await browser.EvaluateAsync("document.querySelector('#size').value")).GetString());
        Assert.Equal(AspectRatioBins.Diffusers512.Bins.Count, (await browser.EvaluateAsync("document.querySelectorAll('#size option').length")).GetInt32());
        Assert.Equal(2, (await browser.EvaluateAsync("document.querySelectorAll('#loras input[type=range]').length")).GetInt32());

        const string prompt = "a lighthouse on a cliff at sunset, oil painting";
        await browser.TypeAsync("#prompt", prompt);
        await browser.EvaluateAsync("(() => { const s = document.querySelector('#image-count'); s.value = 2; })()");
        await browser.ClickAsync("#random-seed");
        long seed = long.Parse((await browser.EvaluateAsync("document.querySelector('#seed').value")).GetString()!);
        await browser.ClickAsync("#generate");

        // Live progress while it runs.
        await browser.WaitForAsync("document.querySelector('#job').dataset.state === 'running' && /Step ([3-9]|\\d\\d) \\//.test(document.querySelector('#job-status').textContent)",
            "a running job past step 3");
        Assert.False((await browser.EvaluateAsync("document.querySelector('#cancel').hidden")).GetBoolean());
        Save(await browser.ScreenshotAsync(), "serve-progress.png");

        await browser.WaitForAsync(
            "document.querySelectorAll('#gallery .result img').length === 2 && [...document.querySelectorAll('#gallery .result img')].every(i => i.complete && i.naturalWidth > 0)",
            "two loaded images in the gallery", TimeSpan.FromSeconds(60));
        Assert.Equal("Done", (await browser.EvaluateAsync("document.querySelector('#job-status').textContent")).GetString());
        var sizes = await browser.EvaluateAsync("[...document.querySelectorAll('#gallery .result img')].map(i => i.naturalWidth + 'x' + i.naturalHeight)");
        Assert.All(sizes.EnumerateArray(), s => Assert.Equal("512x512", s.GetString()));
        var sent = Assert.Single(backend.Requests);
        Assert.Equal((prompt, seed, 2, 512, 512), (sent.Prompt, sent.Seed, sent.ImageCount, sent.Width, sent.Height));
        Assert.Equal(new[] { new AppliedLora("watercolor-style", 0.8) }, sent.Loras); // the slider's default; film-grain at 0 is off
        Assert.Contains(prompt, (await browser.EvaluateAsync("document.querySelector('#gallery .result-prompt').textContent")).GetString());
        Save(await browser.ScreenshotAsync(), "serve-light.png");

        // After a reload the gallery comes back from the output folder.
        await browser.SendAsync("Page.reload");
        await browser.WaitForAsync("document.body?.dataset.ready === 'true' && document.querySelectorAll('#gallery .result').length === 2",
            "the gallery restored after a reload");

        await browser.SetColorSchemeAsync("dark");
        await Task.Delay(1000); // let the colour transitions and card animations finish
        Save(await browser.ScreenshotAsync(), "serve-dark.png");
        await browser.SetViewportAsync(390, 844, mobile: true);
        Save(await browser.ScreenshotAsync(fullPage: true), "serve-mobile.png");

        Assert.True(browser.PageErrors.IsEmpty, "page errors: " + string.Join(" | ", browser.PageErrors));
    }

    [SkippableFact]
    public async Task TheCancelButtonStopsTheRunningJobAndABadRequestShowsTheServersMessage()
    {
        string? chromium = ChromiumSession.Find();
        Skip.If(chromium == null, "no Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run does) or $PIXARTLORA_CHROMIUM");

        var backend = new PatternBackend { StepDelay = TimeSpan.FromMilliseconds(50) };
        await using var h = await DemoHarness.StartAsync(backend);
        await using var browser = await ChromiumSession.LaunchAsync(chromium!);
        await browser.NavigateAsync(h.Server.Url.ToString());
        await browser.WaitForAsync("document.body?.dataset.ready === 'true'", "the form");

        // Server-side limits reach the person as the server's own message.
        await browser.TypeAsync("#prompt", "too many steps");
        await browser.EvaluateAsync("document.querySelector('#steps').value = 5000");
        await browser.ClickAsync("#generate");
        await browser.WaitForAsync("!document.querySelector('#form-error').hidden", "the error message");
        Assert.Equal("steps: 5000 is out of range 1..1000", (await browser.EvaluateAsync("document.querySelector('#form-error').textContent")).GetString());

        await browser.EvaluateAsync("document.querySelector('#steps').value = 1000");
        await browser.ClickAsync("#generate");
        await browser.WaitForAsync("document.querySelector('#job').dataset.state === 'running'", "a running job");
        Assert.True((await browser.EvaluateAsync("document.querySelector('#form-error').hidden")).GetBoolean());
        await browser.ClickAsync("#cancel");
        await browser.WaitForAsync("document.querySelector('#job').dataset.state === 'cancelled'", "the cancelled state");
        Assert.Equal("Cancelled", (await browser.EvaluateAsync("document.querySelector('#job-status').textContent")).GetString());
        Assert.Equal(0, (await browser.EvaluateAsync("document.querySelectorAll('#gallery .result').length")).GetInt32());
        var job = Assert.Single(backend.Requests);
        Assert.Equal(1000, job.Steps);
        Assert.True(browser.PageErrors.IsEmpty, "page errors: " + string.Join(" | ", browser.PageErrors));
    }

    void Save(byte[] png, string name)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        string path = Path.Combine(ScreenshotFolder, name);
        File.WriteAllBytes(path, png);
        output.WriteLine($"screenshot: {path}");
    }
}
