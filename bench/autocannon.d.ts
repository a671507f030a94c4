// The part of autocannon's API the benchmark uses (the package ships no types).
declare module "autocannon" {
  interface Options {
    url: string;
    connections: number;
    duration: number;
    requests: Array<{ method: string; path: string; setupRequest: (request: Record<string, unknown>) => Record<string, unknown> }>;
  }
  interface Result {
    requests: { total: number; average: number };
    non2xx: number;
    errors: number;
    timeouts: number;
  }
  interface Instance {
    on(event: "response", listener: (client: unknown, status: number, bytes: number, milliseconds: number) => void): Instance;
  }
  export default function autocannon(options: Options, done: (error: Error | null, result: Result) => void): Instance;
}
