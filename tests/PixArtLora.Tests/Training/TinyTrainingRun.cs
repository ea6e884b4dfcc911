using PixArtLora.Training;
using PixArtLora.Training.Checkpoints;
using PixArtLora.Training.Optimizers;
using PixArtLora.Training.Schedules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace PixArtLora.Tests.Training;

/// <summary>
/// A miniature training loop over a two-layer MLP and a 16-sample regression set, built from the training
/// infrastructure the way the trainer will be: epoch order from the seed, input noise from a random stream,
/// clipping, schedule, optimizer, EMA. Used to prove that checkpoint + resume continues bit-exactly.
/// </summary>
sealed class TinyTrainingRun : IDisposable
{
    public const int Samples = 16, BatchSize = 4, BatchesPerEpoch = Samples / BatchSize;

    readonly Sequential _model;
    readonly Tensor _x, _y;

    public TinyTrainingRun(string optimizer, long seed, ulong initSeed, long totalSteps)
    {
        _model = nn.Sequential(("fc1", nn.Linear(4, 8)), ("act", nn.Tanh()), ("fc2", nn.Linear(8, 1)));
        using (var g = new Generator(initSeed))
        using (no_grad())
            foreach (var (_, p) in _model.named_parameters())
                p.copy_(randn(p.shape, generator: g) * 0.5);
        using (var data = new Generator(1234))
        {
            _x = randn(new long[] { Samples, 4 }, generator: data).DetachFromDisposeScope();
            _y = (_x.sum(1, keepdim: true).sin() * 2).DetachFromDisposeScope();
        }
        Weights = _model.named_parameters().Select(p => (p.name, p.parameter)).ToList();
        Optimizer = OptimizerFactory.Create(optimizer, Weights, learningRate: optimizer == "came" ? 1e-2 : 3e-2, weightDecay: 1e-2);
        Schedule = LearningRateSchedule.Create("cosine", 1.0, warmupSteps: 2, totalSteps: totalSteps);
        Ema = new ExponentialMovingAverage(Weights, new EmaSettings(Decay: 0.9, Warmup: EmaWarmup.Ramp));
        Random = new TrainingRandom(seed);
        BaseLearningRate = Optimizer.LearningRate;
    }

    public IReadOnlyList<(string Name, Parameter Parameter)> Weights { get; }
    public ITrainingOptimizer Optimizer { get; }
    public LearningRateSchedule Schedule { get; }
    public ExponentialMovingAverage Ema { get; }
    public TrainingRandom Random { get; }
    public double BaseLearningRate { get; }
    public TrainingPosition Position { get; set; } = TrainingPosition.Start;
    public List<double> Losses { get; } = new();

    public TrainingStateParts Parts => new()
    {
        TrainableWeights = Weights, Optimizer = Optimizer, Schedule = Schedule, Ema = Ema, Random = Random,
    };

    /// <summary>Does <paramref name="steps"/> optimizer steps, each on one batch of the current epoch's order.</summary>
    public void Train(int steps)
    {
        for (int i = 0; i < steps; i++)
        {
            using var scope = NewDisposeScope();
            var (step, epoch, batch) = Position;
            var order = Random.EpochPermutation(epoch, Samples);
            var index = tensor(order.Skip((int)batch * BatchSize).Take(BatchSize).ToArray());
            var x = _x.index_select(0, index) + 0.05 * Random.Randn("noise", new long[] { BatchSize, 4 }, ScalarType.Float32, CPU);
            var loss = nn.functional.mse_loss(_model.call(x), _y.index_select(0, index));
            loss.backward();
            double norm = GradientClipping.ClipByGlobalNorm(Weights, 1.0);
            TrainingGuards.EnsureFinite(norm, step, "gradient norm");
            Optimizer.LearningRate = BaseLearningRate * Schedule.Factor(step);
            Optimizer.Step();
            Optimizer.ZeroGrad();
            Ema.Update();
            Losses.Add(loss.item<float>());
            batch++;
            if (batch == BatchesPerEpoch) { epoch++; batch = 0; }
            Position = new TrainingPosition(step + 1, epoch, batch);
        }
    }

    public void Dispose()
    {
        Optimizer.Dispose();
        Ema.Dispose();
        Random.Dispose();
        _model.Dispose();
        _x.Dispose();
        _y.Dispose();
    }
}
