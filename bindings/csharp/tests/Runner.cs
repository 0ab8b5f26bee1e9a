// A small test runner (NUnit is not in Debian's mono packages): runs every
// public static method of Tests whose name starts with "Test" (or those
// named on the command line), each on its own thread with a time limit,
// prints PASS/FAIL, and exits non-zero when any failed.
using System;
using System.Collections.Concurrent;
using System.Linq;
using System.Reflection;
using System.Threading;

namespace Mqtt5c.Tests
{
    static class Assert
    {
        public static void True(bool cond, string what)
        {
            if (!cond) throw new Exception("assertion failed: " + what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!Equals(expected, actual))
                throw new Exception(string.Format("{0}: expected <{1}>, got <{2}>", what, expected, actual));
        }

        public static void Bytes(byte[] expected, byte[] actual, string what)
        {
            True(actual != null && expected.SequenceEqual(actual), what + ": bytes differ");
        }

        public static TException Throws<TException>(Action a, string what) where TException : Exception
        {
            try { a(); }
            catch (TException e) { return e; }
            throw new Exception(what + ": expected " + typeof(TException).Name);
        }
    }

    /// <summary>Items handed from callback threads to the test, taken with a
    /// generous timeout (the event, never a sleep).</summary>
    sealed class Inbox<T>
    {
        readonly BlockingCollection<T> items = new BlockingCollection<T>();
        public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

        public void Add(T item) { items.Add(item); }

        public T Take(string what)
        {
            T item;
            if (!items.TryTake(out item, Timeout)) throw new Exception("timed out waiting for " + what);
            return item;
        }

        public int Count { get { return items.Count; } }
    }

    static class Runner
    {
        static readonly TimeSpan Limit = TimeSpan.FromSeconds(120);

        static int Main(string[] args)
        {
            if (args.Length == 2 && args[0] == Tests.ExitChildFlag) return Tests.ExitChild(args[1]);
            if (args.Length == 2 && args[0] == Tests.CleanupChildFlag) return Tests.CleanupChild(args[1]);
            if (args.Length == 1 && args[0] == Tests.VersionChildFlag)
            {
                Console.WriteLine(Library.Version);
                return 0;
            }
            var tests = typeof(Tests).GetMethods(BindingFlags.Public | BindingFlags.Static)
                .Where(m => m.Name.StartsWith("Test") && (args.Length == 0 || args.Contains(m.Name)))
                .OrderBy(m => m.Name)
                .ToList();
            int failed = 0;
            foreach (var t in tests)
            {
                Exception error = null;
                var thread = new Thread(() =>
                {
                    try { t.Invoke(null, null); }
                    catch (TargetInvocationException e) { error = e.InnerException; }
                    catch (Exception e) { error = e; }
                });
                thread.IsBackground = true;
                var started = DateTime.UtcNow;
                thread.Start();
                if (!thread.Join(Limit)) error = new TimeoutException("did not finish within " + Limit);
                var ms = (int)(DateTime.UtcNow - started).TotalMilliseconds;
                if (error == null) Console.WriteLine("PASS {0} ({1} ms)", t.Name, ms);
                else
                {
                    failed++;
                    Console.WriteLine("FAIL {0} ({1} ms): {2}", t.Name, ms, error);
                }
            }
            if (tests.Count == 0) { Console.WriteLine("no tests matched"); return 1; }
            Console.WriteLine("{0} tests, {1} failed", tests.Count, failed);
            return failed == 0 ? 0 : 1;
        }
    }
}
