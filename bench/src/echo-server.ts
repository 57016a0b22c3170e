/**
 * The ceiling: a bare node:http server that reads the request body and
 * answers with it. `POST /sleep/<ms>` waits that long before answering, the
 * ceiling for a handler that sleeps. Run as its own process; prints its
 * port on stdout.
 */
import { serveBare } from "./bare-server.js";

serveBare((body, sleepMs, answer) => {
  if (sleepMs > 0) setTimeout(() => answer(body), sleepMs);
  else answer(body);
});
