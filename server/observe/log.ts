import { pino, type Logger } from "pino";

/** JSON logs on stdout; secrets never reach here (messages pass the run's redactor first). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { name: "step-executor" }, redact: { paths: ["req.headers.authorization", `req.headers["x-step-executor-signature"]`], remove: true } });
}
