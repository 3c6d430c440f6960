// Headless Chromium (Debian's, or $CHROMIUM) whose fake microphone plays `wav` in a loop.
import { chromium } from "playwright-core";

export function launch(wav) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
           `--use-file-for-fake-audio-capture=${wav}`, "--autoplay-policy=no-user-gesture-required"],
  });
}
