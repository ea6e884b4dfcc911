using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace PixArtLora.IO;

/// <summary>
/// A pickle reader that rebuilds only what a checkpoint needs: numbers, strings, bytes, tuples, lists,
/// dicts/OrderedDicts, and tensors over storages. A pickle is a program; Python's unpickler will import
/// and call any global it names. This one never calls anything: every GLOBAL is looked up in a fixed
/// allow-list (the same idea as torch.load(weights_only=True)) and anything else is refused by name.
/// Opcodes follow CPython's Lib/pickle.py, protocols 0-5.
/// </summary>
internal sealed class PthUnpickler
{
    static readonly HashSet<string> AllowedGlobals = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch._tensor._rebuild_from_type_v2", "torch.Tensor", "torch.nn.parameter.Parameter",
        "torch.Size", "_codecs.encode",
    };

    readonly byte[] _data;
    readonly string _where;
    readonly Func<object?[], object> _persistentLoad;
    readonly List<object?> _stack = new();
    readonly Stack<List<object?>> _metastack = new();
    readonly Dictionary<long, object?> _memo = new();
    int _pos;

    /// <param name="data">the pickle bytes</param>
    /// <param name="where">file and entry name, for error messages</param>
    /// <param name="persistentLoad">resolves a persistent id tuple (torch: ('storage', type, key, location, numel))</param>
    public PthUnpickler(byte[] data, string where, Func<object?[], object> persistentLoad)
    {
        _data = data;
        _where = where;
        _persistentLoad = persistentLoad;
    }

    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Bad("pickle ends without a STOP opcode");
            int at = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: _pos++; break;                                  // PROTO
                case 0x95: ReadBytes(8); break;                            // FRAME: framing only
                case (byte)'.': return Pop();                              // STOP
                case (byte)'(': _metastack.Push(new List<object?>(_stack)); _stack.Clear(); break; // MARK
                case (byte)'0': Pop(); break;                              // POP
                case (byte)'1': PopMark(); break;                          // POP_MARK
                case (byte)'2': Push(Peek()); break;                       // DUP
                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break;
                case (byte)'K': Push((long)ReadBytes(1)[0]); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break;
                case (byte)'I': Push(ParseIntLine(ReadLine())); break;
                case (byte)'L': Push(Number(BigInteger.Parse(ReadLine().TrimEnd('L'), CultureInfo.InvariantCulture))); break;
                case 0x8a: Push(Number(new BigInteger(ReadBytes(ReadBytes(1)[0]), isUnsigned: false, isBigEndian: false))); break;
                case 0x8b: Push(Number(new BigInteger(ReadBytes(ReadLength4()), isUnsigned: false, isBigEndian: false))); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8))); break;
                case (byte)'F': Push(double.Parse(ReadLine(), CultureInfo.InvariantCulture)); break;
                case (byte)'X': Push(Encoding.UTF8.GetString(ReadBytes(ReadLength4()))); break;
                case 0x8c: Push(Encoding.UTF8.GetString(ReadBytes(ReadBytes(1)[0]))); break;
                case 0x8d: Push(Encoding.UTF8.GetString(ReadBytes(ReadLength8()))); break;
                case (byte)'V': Push(ReadLine()); break;                   // UNICODE (raw-unicode-escape; ASCII in practice)
                case (byte)'T': Push(Encoding.Latin1.GetString(ReadBytes(ReadLength4()))); break;
                case (byte)'U': Push(Encoding.Latin1.GetString(ReadBytes(ReadBytes(1)[0]))); break;
                case (byte)'S': Push(ReadLine().Trim('\'', '"')); break;
                case (byte)'B': Push(ReadBytes(ReadLength4())); break;
                case (byte)'C': Push(ReadBytes(ReadBytes(1)[0])); break;
                case 0x8e: Push(ReadBytes(ReadLength8())); break;
                case 0x96: Push(ReadBytes(ReadLength8())); break;          // BYTEARRAY8
                case (byte)')': Push(Array.Empty<object?>()); break;
                case (byte)'t': Push(PopMark().ToArray()); break;
                case 0x85: { var a = Pop(); Push(new[] { a }); break; }
                case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopMark()); break;
                case (byte)'a': { var v = Pop(); ListAt("APPEND").Add(v); break; }
                case (byte)'e': { var items = PopMark(); ListAt("APPENDS").AddRange(items); break; }
                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'d': { var items = PopMark(); var d = new PickleDict(); SetItems(d, items); Push(d); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); DictAt("SETITEM").Set(k, v, _where); break; }
                case (byte)'u': { var items = PopMark(); SetItems(DictAt("SETITEMS"), items); break; }
                case 0x8f: Push(new PickleSet()); break;
                case 0x90: { var items = PopMark(); SetAt("ADDITEMS").Items.AddRange(items); break; }
                case 0x91: { var s = new PickleSet(); s.Items.AddRange(PopMark()); Push(s); break; }
                case (byte)'g': Push(MemoGet(long.Parse(ReadLine(), CultureInfo.InvariantCulture))); break;
                case (byte)'h': Push(MemoGet(ReadBytes(1)[0])); break;
                case (byte)'j': Push(MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break;
                case (byte)'p': _memo[long.Parse(ReadLine(), CultureInfo.InvariantCulture)] = Peek(); break;
                case (byte)'q': _memo[ReadBytes(1)[0]] = Peek(); break;
                case (byte)'r': _memo[BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))] = Peek(); break;
                case 0x94: _memo[_memo.Count] = Peek(); break;            // MEMOIZE
                case (byte)'c': { string module = ReadLine(); string name = ReadLine(); Push(Global(module, name)); break; }
                case 0x93: { var name = Pop(); var module = Pop(); Push(Global(AsString(module, "STACK_GLOBAL module"), AsString(name, "STACK_GLOBAL name"))); break; }
                case (byte)'Q': { var pid = Pop(); Push(_persistentLoad(AsTuple(pid, "persistent id"))); break; }
                case (byte)'P': throw Bad("text persistent ids (PERSID) are not used by torch.save and are not supported");
                case (byte)'R': { var args = Pop(); var fn = Pop(); Push(Reduce(fn, AsTuple(args, "REDUCE arguments"))); break; }
                case 0x81: { var args = Pop(); var cls = Pop(); Push(NewObject(cls, AsTuple(args, "NEWOBJ arguments"))); break; }
                case (byte)'b': { var state = Pop(); Build(Peek(), state); break; }
                default:
                    throw Bad($"opcode 0x{op:x2} ('{(op is >= 32 and < 127 ? (char)op : '?')}') at byte {at} is not allowed in a weights file " +
                              "(object construction by INST/OBJ/EXT/NEWOBJ_EX or out-of-band buffers)");
            }
        }
    }

    // ---- globals and calls: only the allow-list, never a lookup by name ----

    object Global(string module, string name)
    {
        string full = $"{module}.{name}";
        if (AllowedGlobals.Contains(full) || (module == "torch" && PthStorageTypes.IsStorageType(name)))
            return new PickleGlobal(module, name);
        throw Bad($"refers to the Python global '{full}', which is not a tensor, storage or container type. " +
                  "Only tensors, storages, dicts/OrderedDicts, lists, tuples and numbers are rebuilt, because a pickle can run arbitrary code. " +
                  "If you trust the file, re-save its state dict with safetensors (safetensors.torch.save_file) and use that instead");
    }

    object? Reduce(object? fn, object?[] args)
    {
        if (fn is not PickleGlobal g) throw Bad($"REDUCE applied to {Describe(fn)}, expected an allowed function");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                var d = new PickleDict();
                if (args.Length == 1 && args[0] is List<object?> pairs)
                    foreach (var p in pairs) { var kv = AsTuple(p, "OrderedDict item"); d.Set(kv[0], kv[1], _where); }
                else if (args.Length != 0) throw Bad($"OrderedDict called with {args.Length} arguments");
                return d;
            case "torch._utils._rebuild_tensor_v2":
                if (args.Length < 6) throw Bad($"_rebuild_tensor_v2 called with {args.Length} arguments, expected 6 or 7");
                return RebuildTensor(args);
            case "torch._utils._rebuild_tensor":
                if (args.Length != 4) throw Bad($"_rebuild_tensor called with {args.Length} arguments, expected 4");
                return RebuildTensor(args);
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                if (args.Length < 3 || args[0] is not PthTensorInfo data) throw Bad($"{g.Name} expects (tensor, requires_grad, hooks, ...)");
                return data;
            case "torch._tensor._rebuild_from_type_v2":
                // (func, new_type, args, state): a plain Tensor/Parameter rebuilt by an allowed function.
                if (args.Length != 4 || args[1] is not PickleGlobal { FullName: "torch.Tensor" or "torch.nn.parameter.Parameter" })
                    throw Bad($"_rebuild_from_type_v2 with type {Describe(args.ElementAtOrDefault(1))} is not supported (only torch.Tensor and Parameter)");
                return Reduce(args[0], AsTuple(args[2], "_rebuild_from_type_v2 arguments"));
            case "torch.Size":
                return args.Length == 1 ? AsTuple(args[0], "torch.Size") : throw Bad("torch.Size expects one tuple");
            case "_codecs.encode":
                // Protocol 2 stores Python 3 bytes as _codecs.encode(text, 'latin1').
                if (args.Length == 2 && args[0] is string text && args[1] is "latin1" or "latin-1")
                    return Encoding.Latin1.GetBytes(text);
                throw Bad("_codecs.encode is only accepted with the 'latin1' encoding (bytes objects)");
            default:
                throw Bad($"'{g.FullName}' cannot be called");
        }
    }

    object NewObject(object? cls, object?[] args)
    {
        if (cls is PickleGlobal { FullName: "collections.OrderedDict" } && args.Length == 0) return new PickleDict();
        throw Bad($"NEWOBJ of {Describe(cls)} is not allowed (only OrderedDict)");
    }

    void Build(object? target, object? state)
    {
        switch (target)
        {
            case PickleDict d:
                // OrderedDict.__reduce__ passes the instance __dict__ (state_dict()._metadata) as state.
                var attrs = state is object?[] { Length: 2 } t ? t[0] : state;
                if (attrs is PickleDict a)
                    foreach (var k in a.Keys) d.Attributes[AsString(k, "attribute name")] = a[k];
                else if (attrs != null) throw Bad($"OrderedDict state of type {Describe(attrs)}");
                break;
            case PthTensorInfo:
                break; // tensor __setstate__ (requires_grad, hooks) carries nothing we use
            default:
                throw Bad($"BUILD (set object state) on {Describe(target)} is not allowed");
        }
    }

    PthTensorInfo RebuildTensor(object?[] args)
    {
        if (args[0] is not PthStorage storage) throw Bad($"tensor rebuilt from {Describe(args[0])}, expected a storage");
        long offset = AsLong(args[1], "storage offset");
        long[] shape = AsTuple(args[2], "tensor size").Select(v => AsLong(v, "tensor size")).ToArray();
        long[] stride = AsTuple(args[3], "tensor stride").Select(v => AsLong(v, "tensor stride")).ToArray();
        if (shape.Length != stride.Length) throw Bad($"tensor size has {shape.Length} dims but stride has {stride.Length}");
        return new PthTensorInfo(storage, offset, shape, stride);
    }

    // ---- stack and readers ----

    void SetItems(PickleDict d, List<object?> items)
    {
        if (items.Count % 2 != 0) throw Bad("odd number of items for a dict");
        for (int i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1], _where);
    }

    List<object?> ListAt(string op) => Peek() as List<object?> ?? throw Bad($"{op} on {Describe(Peek())}, expected a list");
    PickleDict DictAt(string op) => Peek() as PickleDict ?? throw Bad($"{op} on {Describe(Peek())}, expected a dict");
    PickleSet SetAt(string op) => Peek() as PickleSet ?? throw Bad($"{op} on {Describe(Peek())}, expected a set");

    void Push(object? v) => _stack.Add(v);

    object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Bad("stack underflow");

    object? Pop()
    {
        if (_stack.Count == 0) throw Bad("stack underflow");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    List<object?> PopMark()
    {
        if (_metastack.Count == 0) throw Bad("MARK expected on the stack");
        var items = new List<object?>(_stack);
        _stack.Clear();
        _stack.AddRange(_metastack.Pop());
        return items;
    }

    object? MemoGet(long index) => _memo.TryGetValue(index, out var v) ? v : throw Bad($"memo entry {index} read before it was written");

    ReadOnlySpan<byte> ReadBytesSpan(long n)
    {
        if (n < 0 || _pos + n > _data.Length) throw Bad($"truncated: needs {n} bytes at byte {_pos} of {_data.Length}");
        var span = new ReadOnlySpan<byte>(_data, _pos, (int)n);
        _pos += (int)n;
        return span;
    }

    byte[] ReadBytes(long n) => ReadBytesSpan(n).ToArray();
    int ReadLength4() => checked((int)BinaryPrimitives.ReadUInt32LittleEndian(ReadBytesSpan(4)));
    long ReadLength8() => checked((long)BinaryPrimitives.ReadUInt64LittleEndian(ReadBytesSpan(8)));

    string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Bad("truncated: text argument without newline");
        string s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    static object ParseIntLine(string s) => s switch
    {
        "00" => false,
        "01" => true,
        _ => long.Parse(s, CultureInfo.InvariantCulture),
    };

    static object Number(BigInteger v) => v >= long.MinValue && v <= long.MaxValue ? (long)v : v;

    long AsLong(object? v, string what) => v switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw Bad($"{what}: {Describe(v)}, expected an integer"),
    };

    string AsString(object? v, string what) => v as string ?? throw Bad($"{what}: {Describe(v)}, expected a string");

    object?[] AsTuple(object? v, string what) => v switch
    {
        object?[] t => t,
        List<object?> l => l.ToArray(),
        _ => throw Bad($"{what}: {Describe(v)}, expected a tuple"),
    };

    PthFormatException Bad(string what) => new($"{_where}: {what}");

    /// <summary>A short Python-ish name for a value's type, for error messages.</summary>
    public static string Describe(object? v) => v switch
    {
        null => "None",
        string => "str",
        long or BigInteger => "int",
        bool => "bool",
        double => "float",
        byte[] => "bytes",
        object?[] => "tuple",
        List<object?> => "list",
        PickleDict => "dict",
        PickleSet => "set",
        PthStorage => "storage",
        PthTensorInfo => "tensor",
        PickleGlobal g => g.FullName,
        _ => v.GetType().Name,
    };
}
