// The `pi0` command line: run, inspect, demo, bench, serve, tokenize, prompt, write-random-checkpoint.
import ArgumentParser
import Foundation

@main
struct PI0Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pi0",
        abstract: "π0 and π0.5 (pi0, pi05) vision-language-action policy inference in Swift.",
        subcommands: [DemoCommand.self, RunCommand.self, ServeCommand.self, InspectCommand.self, BenchCommand.self,
                      CUDACheckCommand.self, DownloadCommand.self, TokenizeCommand.self, PromptCommand.self, WriteRandomCheckpointCommand.self],
        defaultSubcommand: nil)
}

/// Prints to standard error (progress, warnings) without disturbing standard output.
func note(_ s: String) {
    FileHandle.standardError.write((s + "\n").data(using: .utf8)!)
}

/// Errors are reported as one line naming what is wrong, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
