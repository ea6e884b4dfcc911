namespace PixArtLora.Models.TextEncoder;

/// <summary>
/// What we need to know about, and change in, a SentencePiece <c>ModelProto</c> file (sentencepiece_model.proto:
/// field 1 = pieces, 2 = trainer_spec with unk_id 40, bos_id 41, eos_id 42).
/// </summary>
public static class SentencePieceModelFile
{
    const int PiecesField = 1, TrainerSpecField = 2, UnkIdField = 40, BosIdField = 41, EosIdField = 42;

    /// <summary>
    /// Microsoft.ML.Tokenizers 2.0.1 indexes its vocabulary with trainer_spec.bos_id and fails
    /// (IndexOutOfRangeException) when it is −1, "no BOS", as in T5's model. A BOS is never emitted here,
    /// so point bos_id at the end-of-sequence id, the value that library already falls back to for
    /// BeginningOfSentenceId; the pieces and their scores are untouched.
    /// </summary>
    public static byte[] PatchForMlTokenizers(byte[] model, string source = "spiece.model")
    {
        try
        {
            long bos = ProtobufFieldRewriter.GetVarint(model, new[] { TrainerSpecField, BosIdField }) ?? 1;
            if ((int)bos >= 0) return model;
            long eos = ProtobufFieldRewriter.GetVarint(model, new[] { TrainerSpecField, EosIdField }) ?? 2;
            return ProtobufFieldRewriter.SetVarint(model, new[] { TrainerSpecField, BosIdField }, eos);
        }
        catch (InvalidDataException e) { throw new InvalidDataException($"{source}: not a SentencePiece model ({e.Message})", e); }
    }

    /// <summary>Number of pieces (repeated field 1) in the model.</summary>
    public static int PieceCount(byte[] model, string source = "spiece.model")
    {
        try { return ProtobufFieldRewriter.CountField(model, PiecesField); }
        catch (InvalidDataException e) { throw new InvalidDataException($"{source}: not a SentencePiece model ({e.Message})", e); }
    }

    /// <summary>trainer_spec.bos_id as stored (default 1 when absent).</summary>
    public static int BosId(byte[] model) => (int)(ProtobufFieldRewriter.GetVarint(model, new[] { TrainerSpecField, BosIdField }) ?? 1);

    /// <summary>trainer_spec.unk_id as stored (default 0 when absent).</summary>
    public static int UnkId(byte[] model) => (int)(ProtobufFieldRewriter.GetVarint(model, new[] { TrainerSpecField, UnkIdField }) ?? 0);
}
