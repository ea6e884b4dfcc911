using PixArtLora.Training.Schedules;

namespace PixArtLora.Tests.Training;

/// <summary>Factors worked out by hand from diffusers' lr_lambda formulas (diffusers/optimization.py).</summary>
public class LearningRateScheduleTests
{
    const double Tol = 1e-12;

    [Theory]
    // constant ignores warmup
    [InlineData("constant", 5, 10, 0, 1.0)]
    [InlineData("constant", 5, 10, 99, 1.0)]
    // constant_with_warmup, warmup 4: step/4 then 1
    [InlineData("constant_with_warmup", 4, 0, 0, 0.0)]
    [InlineData("constant_with_warmup", 4, 0, 1, 0.25)]
    [InlineData("constant_with_warmup", 4, 0, 3, 0.75)]
    [InlineData("constant_with_warmup", 4, 0, 4, 1.0)]
    [InlineData("constant_with_warmup", 4, 0, 1000, 1.0)]
    // linear, warmup 2, total 10: 1/2 at step 1, 1 at step 2, (10-6)/8 at step 6, 0 at and after 10
    [InlineData("linear", 2, 10, 1, 0.5)]
    [InlineData("linear", 2, 10, 2, 1.0)]
    [InlineData("linear", 2, 10, 6, 0.5)]
    [InlineData("linear", 2, 10, 9, 0.125)]
    [InlineData("linear", 2, 10, 10, 0.0)]
    [InlineData("linear", 2, 10, 12, 0.0)]
    // cosine (half period), warmup 2, total 10: progress (s-2)/8; 0.5(1+cos(pi p))
    [InlineData("cosine", 2, 10, 1, 0.5)]
    [InlineData("cosine", 2, 10, 2, 1.0)]
    [InlineData("cosine", 2, 10, 4, 0.85355339059327373)] // p = 1/4: 0.5 + 0.5*cos(pi/4)
    [InlineData("cosine", 2, 10, 6, 0.5)]
    [InlineData("cosine", 2, 10, 10, 0.0)]
    [InlineData("cosine", 0, 10, 15, 0.5)] // past the end the half-cosine rises again (p = 1.5), as in diffusers
    // polynomial, lr 1e-3, lr_end 1e-7, power 1, warmup 0, total 10: ((1e-3 - 1e-7) * (1 - s/10) + 1e-7) / 1e-3
    [InlineData("polynomial", 0, 10, 0, 1.0)]
    [InlineData("polynomial", 0, 10, 5, 0.50005)]
    [InlineData("polynomial", 0, 10, 10, 1e-4)]
    [InlineData("polynomial", 0, 10, 11, 1e-4)]
    [InlineData("polynomial", 5, 10, 2, 0.4)]
    public void FactorsMatchDiffusersFormulas(string name, long warmup, long total, long step, double expected)
    {
        var s = LearningRateSchedule.Create(name, 1e-3, warmup, total);
        Assert.Equal(expected, s.Factor(step), Tol);
        Assert.Equal(1e-3 * expected, s.LearningRateAt(step), 1e-15);
    }

    [Theory]
    // two cycles over 10 steps, no warmup: p = s/10, 0.5(1 + cos(pi * ((2p) mod 1)))
    [InlineData(0, 1.0)]
    [InlineData(4, 0.095491502812526274)] // (0.8 mod 1) = 0.8: 0.5(1 + cos(0.8 pi))
    [InlineData(5, 1.0)]                  // restart
    [InlineData(6, 0.90450849718747373)]  // 0.2: 0.5(1 + cos(0.2 pi))
    [InlineData(10, 0.0)]                 // progress >= 1
    public void CosineWithRestartsRestartsEveryCycle(long step, double expected)
    {
        var s = LearningRateSchedule.Create("cosine_with_restarts", 1.0, 0, 10, numCycles: 2);
        Assert.Equal(expected, s.Factor(step), Tol);
    }

    [Fact]
    public void PolynomialPowerTwo()
    {
        // step 5 of 10: remaining 0.5, squared 0.25: (0.25 (1e-3 - 1e-7) + 1e-7) / 1e-3 = 0.250075
        var s = LearningRateSchedule.Create("polynomial", 1e-3, 0, 10, power: 2.0);
        Assert.Equal(0.250075, s.Factor(5), Tol);
    }

    [Fact]
    public void PiecewiseConstantFollowsItsRules()
    {
        var s = LearningRateSchedule.Create("piecewise_constant", 1.0, stepRules: "1:10,0.1:20,0.01");
        Assert.Equal(1.0, s.Factor(9));
        Assert.Equal(0.1, s.Factor(10));
        Assert.Equal(0.1, s.Factor(19));
        Assert.Equal(0.01, s.Factor(20));
    }

    [Fact]
    public void UnknownNameListsEveryValidValue()
    {
        var e = Assert.Throws<ArgumentException>(() => LearningRateSchedule.Create("cosine_annealing", 1e-4, 0, 10));
        Assert.Contains("'cosine_annealing'", e.Message);
        foreach (var n in new[] { "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial" })
            Assert.Contains(n, e.Message);
    }

    [Fact]
    public void SchedulesThatDecayNeedTheTotalStepCount()
    {
        var e = Assert.Throws<ArgumentException>(() => LearningRateSchedule.Create("linear", 1e-4, 10, 0));
        Assert.Contains("total number of training steps", e.Message);
        var p = Assert.Throws<ArgumentException>(() => LearningRateSchedule.Create("polynomial", 1e-8, 0, 10));
        Assert.Contains("end learning rate", p.Message);
    }

    [Fact]
    public void SettingsRoundTripThroughJson()
    {
        var s = LearningRateSchedule.Create("Cosine_With_Restarts", 2e-5, 100, 5000, numCycles: 3);
        var back = LearningRateSchedule.FromJson(s.ToJson());
        Assert.Equal("cosine_with_restarts", back.Name);
        Assert.True(back.SameSettingsAs(s));
        Assert.Equal(s.LearningRateAt(1234), back.LearningRateAt(1234));
        Assert.False(LearningRateSchedule.Create("cosine_with_restarts", 2e-5, 100, 6000, numCycles: 3).SameSettingsAs(s));
    }
}
