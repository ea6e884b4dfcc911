using System.Runtime.InteropServices;
using TorchSharp;

namespace PixArtLora.Runtime;

/// <summary>
/// libtorch switches TorchSharp 0.107 does not expose, set through libtorch's own exported C++ API (the Itanium ABI:
/// a member function takes the object as its first argument).
/// </summary>
public static class LibTorchSettings
{
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at13globalContextEv")] static extern IntPtr GlobalContext();
    [DllImport("libtorch_cpu", EntryPoint = "_ZN2at7Context20setUserEnabledNNPACKEb")]
    static extern void SetUserEnabledNnpack(IntPtr context, [MarshalAs(UnmanagedType.U1)] bool enabled);
    [DllImport("libtorch_cpu", EntryPoint = "_ZNK2at7Context17userEnabledNNPACKEv")]
    [return: MarshalAs(UnmanagedType.U1)] static extern bool UserEnabledNnpack(IntPtr context);

    /// <summary>
    /// Turns off libtorch's NNPACK convolutions (<c>torch.backends.nnpack.set_flags(False)</c>). On CPUs NNPACK cannot
    /// initialise on — this project's AVX-512 machines among them — libtorch 2.10 otherwise logs "Could not initialize
    /// NNPACK! Reason: Unsupported hardware." from convolutions (the VAE's, the patch embedding's); where it can,
    /// it serves only convolutions of 16 or more images, which PixArt's VAE and patch embedding never run. Returns
    /// whether the switch is off now (false where the symbols are missing, e.g. another libtorch build).
    /// </summary>
    public static bool DisableNnpack()
    {
        try
        {
            // TorchSharp loads libtorch its own way first; the symbols below then resolve to that same library.
            torch.InitializeDeviceType(DeviceType.CPU);
            var context = GlobalContext();
            SetUserEnabledNnpack(context, false);
            return !UserEnabledNnpack(context);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }
}
