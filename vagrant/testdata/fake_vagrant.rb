# A stand-in for Vagrant's configuration DSL, just enough to evaluate the
# Vagrantfile outside Vagrant and record what it configures. Used by
# vagrant/vagrantfile_test.go; prints the record as JSON at exit.
require 'json'

RECORD = { "machines" => {}, "global" => [], "triggers" => [] }

class Recorder
  def initialize(path)
    @path = path
  end

  def method_missing(name, *args, &block)
    key = name.to_s
    return Recorder.new(@path + [key.chomp("=")]) if args.empty? && block.nil? && !key.end_with?("=")
    entry = { "call" => (@path + [key]).join("."), "args" => args.map { |a| a.is_a?(Symbol) ? a.to_s : a } }
    RECORD["current"] << entry
    if block
      if key == "define"
        machine = { "calls" => [] }
        RECORD["machines"][args[0]] = machine
        saved = RECORD["current"]
        RECORD["current"] = machine["calls"]
        block.call(Recorder.new([]))
        RECORD["current"] = saved
      elsif key == "provider"
        block.call(Recorder.new(["provider"]), Recorder.new(["override"]))
      elsif key == "after" || key == "before"
        RECORD["triggers"] << (@path + [key]).join(".")
      end
    end
    nil
  end

  def respond_to_missing?(*) = true
end

module Vagrant
  def self.require_version(*) = nil
  def self.has_plugin?(*) = false
  def self.configure(_version)
    RECORD["current"] = RECORD["global"]
    yield Recorder.new([])
  end
end

at_exit do
  RECORD.delete("current")
  puts JSON.generate(RECORD)
end
