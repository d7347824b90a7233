import "@testing-library/jest-dom/vitest";

import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";

// Testing Library only unmounts automatically when vitest globals are on; they are off here.
afterEach(() => {
  cleanup();
});
