// Checks the constants of src/Constants.cs against include/mqtt5c.h: each
// enum member's C macro is MQTT<anything>_ + prefix + UPPER_SNAKE(member)
// (so a renamed prefix such as MQTT5C_PROP_ still matches; every
// match must agree), and its value
// must be the C one. The header comes from $MQTT5C_HEADER.
using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;

namespace Mqtt5c.Tests
{
    static class HeaderCheck
    {
        static readonly Dictionary<Type, string> Prefixes = new Dictionary<Type, string>
        {
            { typeof(ErrorCode), "ERR_" },
            { typeof(ConnectionEvent), "EVENT_" },
            { typeof(SubscribeFlags), "SUB_" },
            { typeof(QueuePolicy), "QUEUE_" },
            { typeof(Stat), "STAT_" },
            { typeof(LogLevel), "LOG_" },
            { typeof(PropertyId), "PROP_" },
            { typeof(ProtocolVersion), "PROTOCOL_" },
        };

        static string Snake(string name)
        {
            return Regex.Replace(name, "(?<=[a-z0-9])(?=[A-Z])", "_").ToUpperInvariant();
        }

        static long ParseValue(string v)
        {
            v = v.Trim();
            while (v.StartsWith("(") && v.EndsWith(")")) v = v.Substring(1, v.Length - 2).Trim();
            bool neg = v.StartsWith("-");
            if (neg) v = v.Substring(1).Trim();
            long n = v.StartsWith("0x") || v.StartsWith("0X")
                ? long.Parse(v.Substring(2), NumberStyles.HexNumber)
                : long.Parse(v, CultureInfo.InvariantCulture);
            return neg ? -n : n;
        }

        public static void Run()
        {
            var path = Environment.GetEnvironmentVariable("MQTT5C_HEADER");
            Assert.True(!string.IsNullOrEmpty(path) && File.Exists(path), "MQTT5C_HEADER names include/mqtt5c.h: " + path);
            var defines = new Dictionary<string, string>();
            foreach (Match m in Regex.Matches(File.ReadAllText(path), @"^\s*#\s*define\s+(\w+)\s+(.+?)\s*$", RegexOptions.Multiline))
                defines[m.Groups[1].Value] = m.Groups[2].Value;

            var expected = new List<KeyValuePair<string, long>>();
            foreach (var kv in Prefixes)
                foreach (var name in Enum.GetNames(kv.Key))
                {
                    if (kv.Key == typeof(SubscribeFlags) && name == "None") continue;
                    expected.Add(new KeyValuePair<string, long>(kv.Value + Snake(name),
                        Convert.ToInt64(Enum.Parse(kv.Key, name))));
                }
            foreach (Qos q in Enum.GetValues(typeof(Qos)))
                expected.Add(new KeyValuePair<string, long>("QOS" + (int)q, (int)q));
            expected.Add(new KeyValuePair<string, long>("OK", 0));

            var problems = new List<string>();
            foreach (var e in expected)
            {
                var re = new Regex("^MQTT[A-Z0-9]*_" + e.Key + "$");
                var names = defines.Keys.Where(k => re.IsMatch(k)).ToList();
                if (names.Count == 0) problems.Add("no #define MQTT*_" + e.Key);
                // An old spelling kept beside a new one must agree too.
                foreach (var n in names)
                {
                    long actual = ParseValue(defines[n]);
                    if (actual != e.Value) problems.Add(string.Format("{0} is {1} in C, {2} in C#", n, actual, e.Value));
                }
            }
            Assert.True(problems.Count == 0, "constants differ from the header:\n  " + string.Join("\n  ", problems));
            Assert.True(expected.Count > 50, "checked " + expected.Count + " constants");
        }
    }
}
