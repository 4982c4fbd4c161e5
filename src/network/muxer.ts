// The stream muxer: @chainsafe/libp2p-yamux, with one fault worked around. A stream
// opened as its connection closes sends its first window update from a microtask, and
// the closed connection throws StreamStateError from there, where nobody can catch it:
// the process died of it (seen on 50 daemons on one host, under connection churn). The
// frame was for a connection that is gone; it is dropped, and counted.
import { yamux } from '@chainsafe/libp2p-yamux';

type YamuxFactory = ReturnType<ReturnType<typeof yamux>>;
/** The muxer's own method that writes a frame (private in its types). */
type Sends = { sendFrame?: (...args: unknown[]) => unknown };

/** Frames dropped because their connection had closed. */
export const droppedFrames = { count: 0 };

export function guardedYamux(init?: Parameters<typeof yamux>[0]): ReturnType<typeof yamux> {
  const make = yamux(init);
  return () => {
    const factory = make();
    const guarded = Object.create(factory) as YamuxFactory;
    guarded.createStreamMuxer = (maConn) => {
      const muxer = factory.createStreamMuxer(maConn);
      const sends = muxer as unknown as Sends;
      const sendFrame = sends.sendFrame?.bind(muxer);
      if (sendFrame) {
        sends.sendFrame = (...args: unknown[]) => {
          try {
            return sendFrame(...args);
          } catch (err) {
            if ((err as Error)?.name !== 'StreamStateError') throw err;
            droppedFrames.count += 1;
            return false;
          }
        };
      }
      return muxer;
    };
    return guarded;
  };
}
